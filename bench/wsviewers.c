/* Load generator for bench/bench_fanout.py: many WebSocket viewers in one epoll loop.
 *
 * A Python client spends more CPU reading a frame than the server spends writing it, so on a
 * 2-core machine Python viewers, not the server, set the latency. This program reads and parses
 * frames in C, for both peers, the same way:
 *
 *   wsviewers <bigfoot|sio> <path> <count> <probe_every> <offset> <port> [<port>...]
 *
 * Connection i goes to port[(offset + i) % nports]; it is a probe when (offset + i) % probe_every
 * == 0. Every chat message on every connection is counted (BigfootLive frames are JSON arrays of
 * messages, each marked "type":"message"; a socket.io frame "42[...]" is one message). Probes also
 * read the send time (ns since the epoch) from each message's "body" and record the latency.
 * Protocol pings (opcode 9) get their pong; BigfootLive's {"type":"ping"} gets {"type":"pong"};
 * Engine.IO's "2" gets "3".
 *
 * Control over stdin/stdout, one line each: prints {"connected":n,"failed":n} when every
 * connection is open or refused; counting runs between the lines "start" and "stop" on stdin;
 * then prints {"delivered":n,"closed":n,"latencies_ms":[...],"sent_at":[...]} (sent_at: each
 * latency's send time, seconds since the epoch) and exits.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { CONNECTING, HANDSHAKING, UPGRADED, OPEN, CLOSED };

typedef struct {
    int fd;
    int state;
    int probe;
    int port;
    char *buf;
    size_t len, cap;
} conn_t;

static int sio;
static const char *path;
static long delivered, closed_while_open;
static int measuring;
static double *latencies, *sent_at;
static size_t nlat, caplat;
static int pending_open, connected, failed;

static const char MESSAGE_MARK[] = "\"type\":\"message\"";
static const char BODY_MARK[] = "\"body\":\"";
static const char PING_TEXT[] = "{\"type\":\"ping\"}";

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void record_latency(const char *body_start, const char *end) {
    long long sent = 0;
    for (const char *p = body_start; p < end && *p >= '0' && *p <= '9'; p++)
        sent = sent * 10 + (*p - '0');
    if (sent == 0)
        return;
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 65536;
        latencies = realloc(latencies, caplat * sizeof *latencies);
        sent_at = realloc(sent_at, caplat * sizeof *sent_at);
    }
    sent_at[nlat] = (double)sent / 1e9;
    latencies[nlat++] = (double)(now_ns() - sent) / 1e6;
}

/* A masked client frame (opcode 1 text or 10 pong); payloads here are tiny. */
static void send_frame(conn_t *c, int opcode, const char *payload, size_t n) {
    unsigned char frame[2 + 4 + 125];
    if (n > 125)
        return;
    frame[0] = (unsigned char)(0x80 | opcode);
    frame[1] = (unsigned char)(0x80 | n);
    unsigned char mask[4] = {0x1f, 0x2e, 0x3d, 0x4c};
    memcpy(frame + 2, mask, 4);
    for (size_t i = 0; i < n; i++)
        frame[6 + i] = (unsigned char)payload[i] ^ mask[i % 4];
    (void)!send(c->fd, frame, 6 + n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void on_text(conn_t *c, const char *p, size_t n) {
    const char *end = p + n;
    if (!sio) {
        if (memmem(p, n, PING_TEXT, sizeof PING_TEXT - 1))
            send_frame(c, 1, "{\"type\":\"pong\"}", 15);
        if (!measuring)
            return;
        const char *at = p;
        while ((at = memmem(at, (size_t)(end - at), MESSAGE_MARK, sizeof MESSAGE_MARK - 1))) {
            at += sizeof MESSAGE_MARK - 1;
            delivered++;
            if (c->probe) {
                const char *body = memmem(at, (size_t)(end - at), BODY_MARK, sizeof BODY_MARK - 1);
                if (body)
                    record_latency(body + sizeof BODY_MARK - 1, end);
            }
        }
        return;
    }
    /* Engine.IO v4 / socket.io: 0 open, 2 ping, 40 namespace connected, 42 event */
    if (n >= 2 && p[0] == '4' && p[1] == '2') {
        if (measuring) {
            delivered++;
            if (c->probe) {
                const char *body = memmem(p, n, BODY_MARK, sizeof BODY_MARK - 1);
                if (body)
                    record_latency(body + sizeof BODY_MARK - 1, end);
            }
        }
    } else if (n == 1 && p[0] == '2') {
        send_frame(c, 1, "3", 1);
    } else if (n >= 2 && p[0] == '4' && p[1] == '0') {
        if (c->state == UPGRADED) {
            c->state = OPEN;
            connected++;
            pending_open--;
        }
    } else if (n >= 1 && p[0] == '0') {
        send_frame(c, 1, "40", 2);
    }
}

static void close_conn(conn_t *c, int epfd) {
    if (c->state == CLOSED)
        return;
    if (c->state == OPEN)
        closed_while_open++;
    else {
        failed++;
        pending_open--;
    }
    c->state = CLOSED;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
}

/* Parse every complete frame in c->buf; keep the rest. */
static void parse(conn_t *c) {
    size_t off = 0;
    unsigned char *b = (unsigned char *)c->buf;
    while (c->len - off >= 2) {
        unsigned char *f = b + off;
        size_t avail = c->len - off, hdr = 2;
        unsigned long long plen = f[1] & 0x7f;
        if (plen == 126) {
            if (avail < 4)
                break;
            plen = ((unsigned)f[2] << 8) | f[3];
            hdr = 4;
        } else if (plen == 127) {
            if (avail < 10)
                break;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = (plen << 8) | f[2 + i];
            hdr = 10;
        }
        if (avail < hdr + plen) {
            if (hdr + plen > c->cap) {
                c->cap = hdr + plen;
                c->buf = realloc(c->buf, c->cap);
                b = (unsigned char *)c->buf;
            }
            break;
        }
        int opcode = f[0] & 0x0f;
        const char *payload = (const char *)f + hdr;
        if (opcode == 1)
            on_text(c, payload, plen);
        else if (opcode == 9)
            send_frame(c, 10, payload, plen);
        off += hdr + plen;
    }
    if (off) {
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
    }
}

static void send_handshake(conn_t *c) {
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s\r\n",
                     path, c->port, sio ? "" : "Sec-WebSocket-Protocol: bigfootlive.v1\r\n");
    (void)!send(c->fd, req, (size_t)n, MSG_NOSIGNAL);
    c->state = HANDSHAKING;
}

static void on_readable(conn_t *c, int epfd) {
    if (c->cap - c->len < 4096) {
        c->cap = c->cap * 2 > c->len + 65536 ? c->cap * 2 : c->len + 65536;
        c->buf = realloc(c->buf, c->cap);
    }
    ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        close_conn(c, epfd);
        return;
    }
    if (r < 0)
        return;
    c->len += (size_t)r;
    if (c->state == HANDSHAKING) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end)
            return;
        if (strncmp(c->buf, "HTTP/1.1 101", 12) != 0) {
            close_conn(c, epfd);
            return;
        }
        size_t used = (size_t)(end + 4 - c->buf);
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
        c->state = UPGRADED;
        if (!sio) {
            c->state = OPEN;
            connected++;
            pending_open--;
        }
    }
    parse(c);
}

static int open_conn(conn_t *c, int epfd, long index) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->state = CONNECTING;
    c->cap = 8192;
    c->buf = malloc(c->cap);
    c->len = 0;
    pending_open++;
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->state = CLOSED;
        failed++;
        pending_open--;
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u64 = (uint64_t)index + 1};
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: wsviewers <bigfoot|sio> <path> <count> <probe_every> <offset> "
                        "<port>...\n");
        return 2;
    }
    sio = strcmp(argv[1], "sio") == 0;
    path = argv[2];
    long count = atol(argv[3]), probe_every = atol(argv[4]), offset = atol(argv[5]);
    int nports = argc - 6;
    conn_t *conns = calloc((size_t)count, sizeof *conns);
    int epfd = epoll_create1(0);
    struct epoll_event in = {.events = EPOLLIN, .data.u64 = 0};
    epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &in);

    const long max_pending = 256;
    long next = 0;
    int reported = 0, stopping = 0;
    struct epoll_event events[1024];
    char line[64];
    size_t line_len = 0;
    while (!stopping) {
        while (next < count && pending_open < max_pending) {
            conn_t *c = &conns[next];
            c->port = atoi(argv[6 + (offset + next) % nports]);
            c->probe = (offset + next) % probe_every == 0;
            open_conn(c, epfd, next);
            next++;
        }
        if (!reported && next == count && pending_open == 0) {
            printf("{\"connected\":%d,\"failed\":%d}\n", connected, failed);
            fflush(stdout);
            reported = 1;
        }
        int n = epoll_wait(epfd, events, 1024, 200);
        for (int i = 0; i < n; i++) {
            uint64_t key = events[i].data.u64;
            if (key == 0) {
                ssize_t r = read(0, line + line_len, sizeof line - line_len - 1);
                if (r <= 0) {
                    stopping = 1;
                    break;
                }
                line_len += (size_t)r;
                line[line_len] = 0;
                char *nl;
                while ((nl = strchr(line, '\n'))) {
                    *nl = 0;
                    if (strcmp(line, "start") == 0)
                        measuring = 1;
                    else if (strcmp(line, "stop") == 0)
                        stopping = 1;
                    size_t rest = line_len - (size_t)(nl + 1 - line);
                    memmove(line, nl + 1, rest + 1);
                    line_len = rest;
                }
                continue;
            }
            conn_t *c = &conns[key - 1];
            if (c->state == CLOSED)
                continue;
            if (c->state == CONNECTING) {
                if (events[i].events & (EPOLLERR | EPOLLHUP)) {
                    close_conn(c, epfd);
                    continue;
                }
                if (events[i].events & EPOLLOUT) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = key};
                    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
                    send_handshake(c);
                }
                continue;
            }
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(c, epfd);
        }
    }
    printf("{\"delivered\":%ld,\"closed\":%ld,\"latencies_ms\":[", delivered, closed_while_open);
    for (size_t i = 0; i < nlat; i++)
        printf(i ? ",%.3f" : "%.3f", latencies[i]);
    printf("],\"sent_at\":[");
    for (size_t i = 0; i < nlat; i++)
        printf(i ? ",%.3f" : "%.3f", sent_at[i]);
    printf("]}\n");
    fflush(stdout);
    return 0;
}
