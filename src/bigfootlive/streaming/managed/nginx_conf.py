"""The nginx configuration of the managed media server, generated from the settings.

One nginx process, two listeners:

- RTMP on MEDIA_LISTEN_HOST:RTMP_PORT. Encoders publish to `ingest/<stream key>`; `on_publish`
  answers with a relay to `live/<playback id>`, which alone writes HLS (named by the playback id)
  and accepts publishes from loopback only (docs/streaming.md).
- HTTP on MEDIA_LISTEN_HOST:MEDIA_HTTP_PORT, the origin behind CDN_BASE_URL: live HLS
  (`/hls/<playback id>.m3u8`), the ABR ladder (`/live/<playback id>/...`) and VOD
  (`/vod/<event id>/...`) from RECORDINGS_DIR. Every request for one of them is authorized by an
  `auth_request` to `GET /api/media/authorize` (streaming/delivery.py); decisions are cached by
  nginx per playback id and token. Loopback only: `/stat` (health), `/_bfl/health` and
  `/_bfl/hooks/nginx-rtmp`, through which the RTMP notifications reach the API with the media
  server credential in a header (credential.py), never in a URL.

Logs name no secret: nginx-rtmp names the published stream (the stream key) in `error` lines,
so the managed nginx writes its error log to stderr, which the supervisor redacts into
`logs/error.log`, and a printed configuration keeps the file at `crit`; both access logs print
paths without their query strings.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bigfootlive.config import Settings
from bigfootlive.streaming.managed import credential

# Directories nginx's workers write (when the master runs as root, workers run as `user`).
_WRITABLE = ("logs", "tmp", "cache")
INSTANCE_HEADER = "X-BigfootLive-Media"
_WILDCARDS = {"0.0.0.0", "::", "[::]", ""}  # noqa: S104 - listen addresses, not a bind here


class LayoutError(ValueError):
    """A setting that cannot go into an nginx configuration (named, with the fix)."""


def find_nginx(settings: Settings) -> str | None:
    """The nginx binary, when it and the RTMP module are installed; else None."""
    binary = shutil.which(settings.nginx_binary) or (
        "/usr/sbin/nginx" if settings.nginx_binary == "nginx" else None
    )
    if binary is None or not os.access(binary, os.X_OK):
        return None
    if not Path(settings.nginx_rtmp_module).is_file():
        return None
    return binary


def missing_reason(settings: Settings) -> str:
    return (
        f"nginx ({settings.nginx_binary}) with the RTMP module "
        f"({settings.nginx_rtmp_module}) is not installed: install the Debian packages nginx "
        "and libnginx-mod-rtmp (scripts/bootstrap does, from scripts/packages/runtime.txt)"
    )


def _quote(value: str, what: str) -> str:
    if any(c in value for c in '"$\\\n;{}'):
        raise LayoutError(f"{what} {value!r} cannot go into nginx.conf: use a plain path")
    return f'"{value}"'


@dataclass(frozen=True, slots=True)
class MediaLayout:
    runtime_dir: Path
    hls_dir: Path
    recordings_dir: Path
    listen_host: str
    rtmp_port: int
    http_port: int
    api_url: str
    rtmp_module: str
    credential: str
    auth_cache_seconds: float
    run_as_root: bool
    # managed: nginx writes its error log to stderr, which the supervisor redacts into
    # logs/error.log; a printed configuration writes the file itself, at `crit` (below)
    error_log_to_stderr: bool = False
    hls_fragment_seconds: int = 2
    hls_playlist_seconds: int = 12
    update_seconds: int = 5

    @classmethod
    def from_settings(cls, settings: Settings, *, api_port: int | None = None) -> MediaLayout:
        runtime = Path(settings.media_runtime_dir).resolve()
        hls = Path(settings.nginx_rtmp_hls_path or runtime / "hls").resolve()
        api_host = settings.host if settings.host not in _WILDCARDS else "127.0.0.1"
        api_url = settings.media_api_url or f"http://{api_host}:{api_port or settings.port}"
        return cls(
            runtime_dir=runtime,
            hls_dir=hls,
            recordings_dir=Path(settings.recordings_dir).resolve(),
            listen_host=settings.media_listen_host,
            rtmp_port=settings.rtmp_port,
            http_port=settings.media_http_port,
            api_url=api_url.rstrip("/"),
            rtmp_module=settings.nginx_rtmp_module,
            credential=credential.credential(settings),
            auth_cache_seconds=settings.media_auth_cache_seconds,
            run_as_root=os.geteuid() == 0,
        )

    @property
    def conf_path(self) -> Path:
        return self.runtime_dir / "nginx.conf"

    @property
    def pid_path(self) -> Path:
        return self.runtime_dir / "nginx.pid"

    @property
    def error_log(self) -> Path:
        return self.runtime_dir / "logs" / "error.log"

    @property
    def local_host(self) -> str:
        """The address nginx and the API use to reach nginx's own listeners."""
        return "127.0.0.1" if self.listen_host in _WILDCARDS else self.listen_host

    @property
    def http_url(self) -> str:
        return f"http://{self.local_host}:{self.http_port}"

    @property
    def instance(self) -> str:
        """Who answers `/_bfl/health` (its `X-BigfootLive-Media` header): this configuration's
        nginx, not another program or another checkout's on the same port (`/ready`)."""
        seed = f"bfl-media\0{self.runtime_dir}\0{self.credential}".encode()
        return hashlib.sha256(seed).hexdigest()[:16]

    @property
    def stat_url(self) -> str:
        return f"{self.http_url}/stat"

    @property
    def health_url(self) -> str:
        return f"{self.http_url}/_bfl/health"

    def prepare(self) -> None:
        """Create the runtime directories; nginx's workers (an unprivileged user when the
        master runs as root, unless `user root`) write logs, temp files, cache and HLS."""
        for sub in _WRITABLE:
            (self.runtime_dir / sub).mkdir(parents=True, exist_ok=True)
        self.hls_dir.mkdir(parents=True, exist_ok=True)
        self.recordings_dir.mkdir(parents=True, exist_ok=True)
        self.runtime_dir.chmod(0o700 if self.run_as_root else 0o750)

    def render(self) -> str:
        api = urlsplit(self.api_url)
        if api.scheme not in ("http", "https") or not api.netloc:
            raise LayoutError(f"MEDIA_API_URL {self.api_url!r} must be an http(s):// URL")
        run = str(self.runtime_dir)
        q = _quote
        for value, what in ((run, "MEDIA_RUNTIME_DIR"), (str(self.hls_dir), "NGINX_RTMP_HLS_PATH"),
                            (str(self.recordings_dir), "RECORDINGS_DIR"),
                            (self.rtmp_module, "NGINX_RTMP_MODULE")):  # fmt: skip
            q(value, what)
        listen = self.listen_host or "0.0.0.0"  # noqa: S104 - nginx's listen address
        if listen in ("::", "[::]"):
            listen = "[::]:{port} ipv6only=off"  # both stacks: the relay and hooks use 127.0.0.1
        elif ":" in listen:
            raise LayoutError(
                f"MEDIA_LISTEN_HOST {self.listen_host!r}: use an IPv4 address, 0.0.0.0 or ::"
            )
        else:
            listen += ":{port}"
        hook = f"{self.http_url}/_bfl/hooks/nginx-rtmp"
        loopback = "allow 127.0.0.1; allow ::1;"
        if self.local_host not in ("127.0.0.1", "::1", "localhost"):
            loopback += f" allow {self.local_host};"
        api_base = f"{api.scheme}://bfl_api{api.path.rstrip('/')}"
        cache = max(int(self.auth_cache_seconds), 0)
        if self.error_log_to_stderr:
            error_log = "error_log stderr warn;  # redacted into logs/error.log by bigfootlive"
        else:
            error_log = (
                "# nginx-rtmp names the stream (the encoder's stream key) in `error` lines: kept\n"
                "# at `crit` so keys stay out of the file (`warn` to debug, keys included).\n"
                f"error_log {q(str(self.error_log), 'error_log')} crit;"
            )
        user = (
            "# bigfootlive runs as root: nginx's workers keep that user so they can write the\n"
            "# runtime directory (run bigfootlive as an unprivileged user instead).\n"
            "user root;\n"
            if self.run_as_root
            else ""
        )
        return f"""\
# Generated by bigfootlive (streaming/managed/nginx_conf.py) from its settings; regenerate it
# with `bigfootlive media-server config` instead of editing it. It holds the media-server
# credential (X-API-Key below): keep it readable by its owner only.
load_module {q(self.rtmp_module, "NGINX_RTMP_MODULE")};
daemon off;
master_process on;
worker_processes 1;  # nginx-rtmp keeps live streams in one worker
{user}pid {q(str(self.pid_path), "pid")};
{error_log}
events {{ worker_connections 1024; }}  # within the usual open-file limit of a user

rtmp {{
    log_format bfl '$remote_addr [$time_local] $command "$app" $bytes_received $bytes_sent $session_readable_time';
    access_log {q(run + "/logs/rtmp-access.log", "log")} bfl;
    server {{
        listen {listen.format(port=self.rtmp_port)};
        chunk_size 4096;
        notify_method post;
        notify_update_timeout {self.update_seconds}s;  # how fast a stopped event drops its publisher
        application ingest {{
            live on;
            allow play 127.0.0.1;  # only nginx's own relay reads from ingest
            deny play all;
            on_publish      {hook};
            on_publish_done {hook};
            on_update       {hook};
        }}
        application live {{
            live on;
            allow publish 127.0.0.1;  # only the relay publishes here
            deny publish all;
            on_play         {hook};
            on_play_done    {hook};
            on_done         {hook};
            hls on;
            hls_path {q(str(self.hls_dir), "NGINX_RTMP_HLS_PATH")};
            hls_fragment {self.hls_fragment_seconds}s;
            hls_playlist_length {self.hls_playlist_seconds}s;
        }}
    }}
}}

http {{
    default_type application/octet-stream;
    types {{
        application/vnd.apple.mpegurl m3u8;
        video/mp2t ts;
        video/mp4 mp4 m4s;
        audio/aac aac;
        image/jpeg jpg;
    }}
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 30s;
    log_format bfl '$remote_addr [$time_local] "$request_method $uri" $status $body_bytes_sent $request_time';
    access_log {q(run + "/logs/access.log", "log")} bfl;
    client_body_temp_path {q(run + "/tmp/body", "tmp")};
    proxy_temp_path {q(run + "/tmp/proxy", "tmp")};
    fastcgi_temp_path {q(run + "/tmp/fastcgi", "tmp")};
    uwsgi_temp_path {q(run + "/tmp/uwsgi", "tmp")};
    scgi_temp_path {q(run + "/tmp/scgi", "tmp")};
    proxy_cache_path {q(run + "/cache/authorize", "cache")} levels=1:2 keys_zone=bfl_authorize:10m max_size=64m inactive=2m use_temp_path=off;

    # Idle connections to the API are closed here before uvicorn closes them (its keep-alive
    # timeout is 5 s): reused at the moment uvicorn closed it, a connection answered the next
    # on_update (every 5 s) with a reset, nginx-rtmp took the failed notification as a refusal
    # and dropped a live publisher.
    upstream bfl_api {{
        server {api.netloc};
        keepalive 32;
        keepalive_timeout 4s;
    }}

    # A token given as ?token= is carried into the playlist's own URIs (players that keep no
    # cookies) and kept in a cookie scoped to the stream's path.
    map $arg_token $bfl_token_query {{
        "" "";
        default "?token=$arg_token";
    }}
    map $arg_token $bfl_token_cookie {{
        "" "";
        default "bfl_playback_$bfl_scope=$arg_token; Path=$bfl_cookie_path; HttpOnly; SameSite=Lax";
    }}

    server {{
        listen {listen.format(port=self.http_port)};

        location = /_bfl/health {{
            {loopback} deny all;
            access_log off;
            default_type text/plain;
            add_header {INSTANCE_HEADER} "{self.instance}";
            return 200 "ok\\n";
        }}
        location = /stat {{
            {loopback} deny all;
            access_log off;
            rtmp_stat all;
        }}
        location = /_bfl/hooks/nginx-rtmp {{
            {loopback} deny all;
            access_log off;
            proxy_pass {api_base}/api/streaming/hooks/nginx-rtmp;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host {api.netloc};
            proxy_set_header X-API-Key "{self.credential}";
            proxy_redirect off;  # the relay answer is an rtmp:// Location, passed as it is
        }}
        location = /_bfl/authorize {{
            internal;
            proxy_pass {api_base}/api/media/authorize;
            proxy_http_version 1.1;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header Connection "";
            proxy_set_header Host {api.netloc};
            proxy_set_header X-API-Key "{self.credential}";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Playback-Token $bfl_token;  # a subrequest has no arguments
            proxy_cache bfl_authorize;
            proxy_cache_key "$bfl_scope|$bfl_token|$http_cookie";
            proxy_cache_valid 200 204 {cache}s;
            proxy_cache_valid 401 403 {min(cache, 5)}s;
            proxy_cache_lock on;
            proxy_ignore_headers Cache-Control Expires Set-Cookie Vary;
        }}

        # live HLS written by nginx-rtmp: /hls/<playback id>.m3u8, /hls/<playback id>-<n>.ts
        location ~ ^/hls/(?<bfl_file>(?<bfl_scope>[A-Za-z0-9_]+)(-[0-9]+)?\\.(m3u8|ts))$ {{
            set $bfl_token $arg_token;
            auth_request /_bfl/authorize;
            set $bfl_cookie_path /hls/;
            alias {q(str(self.hls_dir), "NGINX_RTMP_HLS_PATH")[:-1]}/$bfl_file";
            add_header Cache-Control no-cache;
            add_header Set-Cookie $bfl_token_cookie;
            add_header Access-Control-Allow-Origin "*" always;  # players on other origins
            sub_filter_types application/vnd.apple.mpegurl;
            sub_filter_once off;
            sub_filter ".ts" ".ts$bfl_token_query";
        }}
        # the ABR ladder of the event's transcoder: /live/<playback id>/...
        location ~ ^/live/(?<bfl_scope>[A-Za-z0-9_]+)/[A-Za-z0-9_./-]+$ {{
            set $bfl_token $arg_token;
            auth_request /_bfl/authorize;
            set $bfl_cookie_path /live/$bfl_scope/;
            root {q(str(self.recordings_dir), "RECORDINGS_DIR")};
            add_header Cache-Control no-cache;
            add_header Set-Cookie $bfl_token_cookie;
            add_header Access-Control-Allow-Origin "*" always;  # players on other origins
            sub_filter_types application/vnd.apple.mpegurl;
            sub_filter_once off;
            sub_filter ".ts" ".ts$bfl_token_query";
            sub_filter ".m4s" ".m4s$bfl_token_query";
            sub_filter ".m3u8" ".m3u8$bfl_token_query";
        }}
        # recordings published as VOD: /vod/<event id>/...
        location ~ "^/vod/(?<bfl_scope>[0-9a-f-]{{36}})/[A-Za-z0-9_./-]+$" {{
            set $bfl_token $arg_token;
            auth_request /_bfl/authorize;
            set $bfl_cookie_path /vod/$bfl_scope/;
            root {q(str(self.recordings_dir), "RECORDINGS_DIR")};
            add_header Set-Cookie $bfl_token_cookie;
            add_header Access-Control-Allow-Origin "*" always;  # players on other origins
            sub_filter_types application/vnd.apple.mpegurl;
            sub_filter_once off;
            sub_filter ".ts" ".ts$bfl_token_query";
            sub_filter ".m4s" ".m4s$bfl_token_query";
            sub_filter ".m3u8" ".m3u8$bfl_token_query";
        }}
        location / {{
            return 404;
        }}
    }}
}}
"""  # noqa: E501, S108 - nginx lines; paths under MEDIA_RUNTIME_DIR

    def write(self) -> Path:
        self.prepare()
        path = self.conf_path
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.render())
        tmp.replace(path)
        return path
