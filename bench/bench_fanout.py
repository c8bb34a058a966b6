"""Fan-out benchmark: N viewers on one event, senders at R msgs/s, BigfootLive vs socket.io.

    python -m bench.bench_fanout [--viewers 1000,5000,10000] [--rate 20] [--duration 10]
                                 [--servers <cores>] [--clients <cores>] [--no-reference]

Both peers run as many server processes as there are cores (one port each; viewers are spread
round-robin) sharing one Redis: BigfootLive (uvicorn, uvloop, the hub in realtime/hub.py) and
the reference, Node.js socket.io + @socket.io/redis-adapter (bench/reference/socketio, installed
with `npm ci`). Viewers are raw WebSocket clients on asyncio Protocols (no per-message framework
overhead), many per process, in several processes. Every delivered chat message is counted on
every connection (a byte search, no JSON parse); end-to-end latency (send -> receipt) is
measured on a sample of "probe" connections that parse every frame. Server CPU (utime+stime
from /proc) and RSS are read for the server processes only.

Differences the figures include: a BigfootLive message is validated, rate-limited, stored in the
database and acknowledged before it is published; the reference only broadcasts. BigfootLive
batches broadcasts of one short window (WS_BATCH_WINDOW_MS) into one frame; socket.io sends one
frame per message. Both run on the same machine as the load generators.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing as mp
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "bench" / "reference" / "socketio"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
CLK_TCK = os.sysconf("SC_CLK_TCK")
DB_NAME = f"bench_fanout_{uuid.uuid4().hex[:8]}"
MESSAGE_MARK = b'"type":"message"'
PING_MARK = b'{"type":"ping"}'


# --- raw WebSocket client ------------------------------------------------------------------------


def masked_frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    n = len(payload)
    header = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0x80 | 126]) + n.to_bytes(2)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + body


PONG_FRAME = masked_frame('{"type":"pong"}')


@dataclass
class Stats:
    connected: int = 0
    failed: int = 0
    closed: int = 0
    delivered: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    measuring: bool = False


class Viewer(asyncio.Protocol):
    """Handshake, then parse server frames (unmasked) and count chat messages."""

    def __init__(self, kind: str, path: str, port: int, probe: bool, stats: Stats) -> None:
        self.kind, self.path, self.port, self.probe, self.stats = kind, path, port, probe, stats
        self.buf = bytearray()
        self.open = False
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        extra = "Sec-WebSocket-Protocol: bigfootlive.v1\r\n" if self.kind == "bigfoot" else ""
        transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
            ).encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if self.open:
            self.stats.closed += 1
        if not self.ready.done():
            self.ready.set_result(False)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            ok = buf.startswith(b"HTTP/1.1 101")
            del buf[: end + 4]
            self.open = ok
            if not ok:
                self.ready.set_result(False)
                return
            if self.kind == "bigfoot":
                self.ready.set_result(True)
        while len(buf) >= 2:
            length = buf[1] & 0x7F
            offset = 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, offset = int.from_bytes(buf[2:4]), 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, offset = int.from_bytes(buf[2:10]), 10
            if len(buf) < offset + length:
                return
            opcode = buf[0] & 0x0F
            payload = bytes(buf[offset : offset + length])
            del buf[: offset + length]
            if opcode == 0x1:
                self.on_text(payload)
            elif opcode == 0x9 and self.transport is not None:  # ping -> pong
                self.transport.write(bytes([0x8A, 0x80]) + os.urandom(4))

    def on_text(self, payload: bytes) -> None:
        stats = self.stats
        if self.kind == "bigfoot":
            if PING_MARK in payload and self.transport is not None:
                self.transport.write(PONG_FRAME)
            count = payload.count(MESSAGE_MARK)
            if count and stats.measuring:
                stats.delivered += count
                if self.probe:
                    now = time.time_ns()
                    for m in json.loads(payload):
                        if m.get("type") == "message":
                            stats.latencies_ms.append((now - int(m["message"]["body"])) / 1e6)
            return
        # socket.io (Engine.IO v4): 0 open, 2 ping, 40 namespace connected, 42 event
        if payload.startswith(b"42"):
            if stats.measuring:
                stats.delivered += 1
                if self.probe:
                    now = time.time_ns()
                    _, message = json.loads(payload[2:])
                    stats.latencies_ms.append((now - int(message["message"]["body"])) / 1e6)
        elif payload == b"2" and self.transport is not None:
            self.transport.write(masked_frame("3"))
        elif payload.startswith(b"0") and self.transport is not None:
            self.transport.write(masked_frame("40"))
        elif payload.startswith(b"40") and not self.ready.done():
            self.ready.set_result(True)


async def _client_main(
    kind: str, ports: list[int], path: str, count: int, probe_every: int, offset: int, pipe: Any
) -> None:
    stats = Stats()
    loop = asyncio.get_running_loop()
    transports: list[asyncio.BaseTransport] = []
    sem = asyncio.Semaphore(200)

    async def open_one(i: int) -> None:
        port = ports[(offset + i) % len(ports)]
        async with sem:
            try:
                probe = (offset + i) % probe_every == 0
                transport, protocol = await loop.create_connection(
                    lambda: Viewer(kind, path, port, probe, stats), "127.0.0.1", port
                )
                transports.append(transport)
                if await asyncio.wait_for(protocol.ready, 60):
                    stats.connected += 1
                else:
                    stats.failed += 1
            except (OSError, TimeoutError):
                stats.failed += 1

    await asyncio.gather(*(open_one(i) for i in range(count)))
    pipe.send({"connected": stats.connected, "failed": stats.failed})
    await loop.run_in_executor(None, pipe.recv)  # "start"
    stats.measuring = True
    await loop.run_in_executor(None, pipe.recv)  # "stop"
    stats.measuring = False
    pipe.send(
        {
            "delivered": stats.delivered,
            "latencies_ms": stats.latencies_ms,
            "closed": stats.closed,
        }
    )
    for transport in transports:
        transport.abort()


def client_process(*args: Any) -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(_client_main(*args))


# --- servers -------------------------------------------------------------------------------------


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def wait_http(port: int, within: float = 180.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server on {port} did not start")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Peer:
    name: str
    kind: str
    procs: list[subprocess.Popen[bytes]]
    ports: list[int]
    path: str
    send: Any  # async callable(rate, duration) -> sent count


PG_ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SENDERS_PER_MSG_PER_SECOND = 1.0  # chat comes from many people: one connection per msg/s


async def _create_database(name: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name


async def _drop_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def start_bigfoot(servers: int, workdir: Path, prefix: str) -> tuple[Peer, dict[str, str]]:
    env = {
        **os.environ,
        "NODE_ENV": "test",
        "DATABASE_URL": asyncio.run(_create_database(DB_NAME)),
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": prefix,
        "JWT_SECRET": "bench-secret-" + "x" * 40,
        "AUTO_MIGRATE": "false",
        "LOG_LEVEL": "WARNING",
        "CHAT_RATE_LIMIT": "100000/second",
        "WS_HEARTBEAT_SECONDS": "20",
        "WS_SEND_QUEUE_SIZE": os.environ.get("WS_SEND_QUEUE_SIZE", "256"),
        "WS_BATCH_WINDOW_MS": os.environ.get("WS_BATCH_WINDOW_MS", "15"),
        "ARGON2_MEMORY_KIB": "1024",
        "ARGON2_TIME_COST": "1",
        "MAIL_OUTBOX_DIR": str(workdir / "outbox"),
    }
    from bigfootlive.migrations import upgrade_database

    asyncio.run(upgrade_database(env["DATABASE_URL"]))
    token_env = asyncio.run(_seed(env))
    ports = [free_port() for _ in range(servers)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bigfootlive.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--ws",
                "websockets-sansio",
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--log-level",
                "warning",
                "--no-access-log",
                "--backlog",
                "4096",
            ],
            env=env,
            cwd=workdir,
        )
        for port in ports
    ]
    for port in ports:
        wait_http(port)
    event_id, token = asyncio.run(_login_and_create(ports[0], token_env))

    async def send(rate: float, duration: float) -> int:
        import websockets

        senders = max(1, round(rate * SENDERS_PER_MSG_PER_SECOND))

        async def one_sender(i: int) -> int:
            async with websockets.connect(
                f"ws://127.0.0.1:{ports[i % len(ports)]}/ws/events/{event_id}",
                subprotocols=["bigfootlive.v1", f"bearer.{token}"],  # type: ignore[list-item]
                max_size=None,
            ) as ws:

                async def drain() -> None:
                    async for _ in ws:
                        pass

                reader = asyncio.create_task(drain())
                await asyncio.sleep(i / rate)
                sent = await _paced(
                    rate / senders,
                    duration,
                    lambda: ws.send(json.dumps({"type": "send", "body": str(time.time_ns())})),
                )
                reader.cancel()
                return sent

        return sum(await asyncio.gather(*(one_sender(i) for i in range(senders))))

    path = f"/ws/events/{event_id}"
    return Peer("bigfootlive", "bigfoot", procs, ports, path, send), env


async def _seed(env: dict[str, str]) -> dict[str, str]:
    from bigfootlive.authz.roles import Role
    from bigfootlive.config import Settings
    from bigfootlive.identity import service as identity
    from bigfootlive.state import AppState
    from bigfootlive.tenants import service as tenants
    from bigfootlive.tenants.schemas import TenantSettings

    settings = Settings(
        database_url=env["DATABASE_URL"],
        jwt_secret=env["JWT_SECRET"],
        argon2_memory_kib=1024,
        argon2_time_cost=1,
    )
    state = AppState.build(settings)
    try:
        async with state.db.transaction() as session:
            tenant = await tenants.create_tenant(
                session, slug="bench", name="Bench", settings=TenantSettings(), email_domains=[]
            )
            await identity.create_account(
                state,
                session,
                tenant=tenant,
                email="streamer@bench.example",
                display_name="Streamer",
                role=Role.STREAMER,
                password="bench-password-long-enough-1",
                email_verified=True,
            )
    finally:
        await state.close()
    return {
        "tenant": "bench",
        "email": "streamer@bench.example",
        "password": "bench-password-long-enough-1",
    }


async def _login_and_create(port: int, creds: dict[str, str]) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        login = await http.post("/api/auth/login", json=creds)
        login.raise_for_status()
        token = login.json()["access_token"]
        event = await http.post(
            "/api/events", json={"title": "Bench"}, headers={"Authorization": f"Bearer {token}"}
        )
        event.raise_for_status()
        return event.json()["id"], token


def start_socketio(servers: int, prefix: str) -> Peer:
    if not (REFERENCE / "node_modules").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=REFERENCE, check=True)
    ports = [free_port() for _ in range(servers)]
    procs = [
        subprocess.Popen(
            ["node", "server.js"],
            env={**os.environ, "PORT": str(port), "REDIS_URL": REDIS_URL, "REDIS_PREFIX": prefix},
            cwd=REFERENCE,
            stdout=subprocess.DEVNULL,
        )
        for port in ports
    ]
    for port in ports:
        wait_http(port, 60)
    path = "/socket.io/?EIO=4&transport=websocket&event=bench"

    async def send(rate: float, duration: float) -> int:
        loop = asyncio.get_running_loop()
        stats = Stats()
        transport, protocol = await loop.create_connection(
            lambda: Viewer("sio", path, ports[0], False, stats), "127.0.0.1", ports[0]
        )
        await protocol.ready

        async def one() -> None:
            transport.write(masked_frame(f'42["send","{time.time_ns()}"]'))

        sent = await _paced(rate, duration, one)
        transport.abort()
        return sent

    return Peer("socket.io+redis-adapter", "sio", procs, ports, path, send)


async def _paced(rate: float, duration: float, send_one: Any) -> int:
    interval = 1.0 / rate
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < duration:
        await send_one()
        sent += 1
        next_at = start + sent * interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    return sent


def stop(peer: Peer) -> None:
    for proc in peer.procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in peer.procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


# --- one measurement -----------------------------------------------------------------------------


def measure(peer: Peer, viewers: int, rate: float, duration: float, clients: int) -> dict[str, Any]:
    pids = [p.pid for p in peer.procs]
    rss_before = sum(proc_rss_bytes(pid) for pid in pids)
    probe_every = max(1, min(50, viewers // 20))
    pipes, procs = [], []
    per = [viewers // clients + (1 if i < viewers % clients else 0) for i in range(clients)]
    offset = 0
    ctx = mp.get_context("spawn")
    connect_started = time.monotonic()
    for count in per:
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=client_process,
            args=(peer.kind, peer.ports, peer.path, count, probe_every, offset, child),
        )
        proc.start()
        pipes.append(parent)
        procs.append(proc)
        offset += count
    ready = [pipe.recv() for pipe in pipes]
    connect_seconds = time.monotonic() - connect_started
    connected = sum(r["connected"] for r in ready)
    time.sleep(1.0)
    rss_after = sum(proc_rss_bytes(pid) for pid in pids)
    cpu_before = sum(proc_cpu_seconds(pid) for pid in pids)
    for pipe in pipes:
        pipe.send("start")
    started = time.monotonic()
    sent = asyncio.run(peer.send(rate, duration))
    time.sleep(1.0)  # let in-flight deliveries land
    elapsed = time.monotonic() - started
    cpu_after = sum(proc_cpu_seconds(pid) for pid in pids)
    for pipe in pipes:
        pipe.send("stop")
    results = [pipe.recv() for pipe in pipes]
    for proc in procs:
        proc.join(30)
    latencies = sorted(x for r in results for x in r["latencies_ms"])
    delivered = sum(r["delivered"] for r in results)
    expected = sent * connected

    def pct(q: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1)

    return {
        "viewers": viewers,
        "connected": connected,
        "connect_failures": sum(r["failed"] for r in ready),
        "connect_seconds": round(connect_seconds, 1),
        "dropped_during_run": sum(r["closed"] for r in results),
        "sent": sent,
        "send_rate": round(sent / duration, 1),
        "delivered": delivered,
        "delivery_ratio": round(delivered / expected, 4) if expected else None,
        "delivered_per_second": round(delivered / duration, 0),
        "latency_ms_p50": pct(0.50),
        "latency_ms_p99": pct(0.99),
        "latency_ms_mean": round(statistics.fmean(latencies), 1) if latencies else None,
        "latency_samples": len(latencies),
        "server_cpu_percent": round(100 * (cpu_after - cpu_before) / elapsed, 1),
        "server_rss_mb": round(rss_after / 2**20, 1),
        "memory_per_connection_kb": round((rss_after - rss_before) / max(1, connected) / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--viewers", default="1000,5000,10000")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--servers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--clients", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--no-reference", action="store_true")
    args = parser.parse_args()

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    levels = [int(v) for v in args.viewers.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    report: dict[str, Any] = {
        "benchmark": "fanout",
        "rate_msgs_per_second": args.rate,
        "duration_seconds": args.duration,
        "server_processes": args.servers,
        "client_processes": args.clients,
        "cores": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "results": {},
    }
    peers: list[Any] = [lambda: start_bigfoot(args.servers, workdir, prefix)[0]]
    if not args.no_reference:
        peers.append(lambda: start_socketio(args.servers, prefix + "sio"))
    try:
        for make in peers:
            peer = make()
            try:
                rows = []
                for n in levels:
                    row = measure(peer, n, args.rate, args.duration, args.clients)
                    row["load_average"] = os.getloadavg()
                    print(json.dumps({"peer": peer.name, **row}), file=sys.stderr, flush=True)
                    rows.append(row)
                report["results"][peer.name] = rows
            finally:
                stop(peer)
        if "socket.io+redis-adapter" in report["results"]:
            ratios = []
            for ours, theirs in zip(
                report["results"]["bigfootlive"],
                report["results"]["socket.io+redis-adapter"],
                strict=True,
            ):
                ratios.append(
                    {
                        "viewers": ours["viewers"],
                        "delivered_per_second_ratio": round(
                            ours["delivered_per_second"] / max(1, theirs["delivered_per_second"]), 3
                        ),
                        "p99_ratio": (
                            round(ours["latency_ms_p99"] / theirs["latency_ms_p99"], 3)
                            if ours["latency_ms_p99"] and theirs["latency_ms_p99"]
                            else None
                        ),
                        "cpu_ratio": round(
                            ours["server_cpu_percent"] / max(0.1, theirs["server_cpu_percent"]), 3
                        ),
                    }
                )
            report["bigfootlive_vs_reference"] = ratios
        report["load_average_at_end"] = os.getloadavg()
        print(json.dumps(report, indent=2))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        with contextlib.suppress(Exception):
            asyncio.run(_drop_database(DB_NAME))
        with contextlib.suppress(Exception):
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=prefix + "*", count=1000))
            if keys:
                client.delete(*keys)


if __name__ == "__main__":
    main()
