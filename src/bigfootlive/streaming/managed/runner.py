"""MEDIA_SERVER_MODE for `bigfootlive serve`, and the media server's line in `/ready`.

- `managed`: serve generates the nginx configuration, starts nginx, restarts it when it dies and
  stops it on exit; CDN_BASE_URL, NGINX_RTMP_STAT_URL and NGINX_RTMP_HLS_PATH default to it.
- `external`: the operator runs the media server (`bigfootlive media-server config` prints the
  nginx configuration to deploy); only its callbacks reach this process.
- `none`: no media server; events can be managed, nobody can go live.
- `auto` (default): `managed` when MEDIA_SERVER=nginx-rtmp, nginx and its RTMP module are
  installed and NODE_ENV=development (`make run`); `external` in production or for SRS /
  MediaMTX; otherwise (NODE_ENV=test, nginx missing) `none`, with the reason logged and shown
  by `/ready`.

serve resolves the mode once and exports it (MEDIA_SERVER_MODE and the defaults above) into its
environment, which uvicorn's workers read their settings from.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Literal

import httpx
import structlog

from bigfootlive.config import Settings
from bigfootlive.streaming.managed.nginx_conf import (
    INSTANCE_HEADER,
    LayoutError,
    MediaLayout,
    find_nginx,
    missing_reason,
)
from bigfootlive.streaming.managed.supervisor import NginxSupervisor

log = structlog.get_logger(__name__)

Mode = Literal["managed", "external", "none"]


@dataclass(frozen=True, slots=True)
class Resolved:
    mode: Mode
    reason: str


def resolve(settings: Settings) -> Resolved:
    """The mode this process runs in (raises LayoutError for an impossible explicit choice)."""
    requested = settings.media_server_mode
    if requested == "managed":
        if settings.media_server != "nginx-rtmp":
            raise LayoutError(
                "MEDIA_SERVER_MODE=managed runs nginx-rtmp, but "
                f"MEDIA_SERVER={settings.media_server}: set MEDIA_SERVER=nginx-rtmp, "
                "or MEDIA_SERVER_MODE=external"
            )
        if find_nginx(settings) is None:
            raise LayoutError(f"MEDIA_SERVER_MODE=managed, but {missing_reason(settings)}")
        return Resolved("managed", "MEDIA_SERVER_MODE=managed")
    if requested in ("external", "none"):
        return Resolved(requested, f"MEDIA_SERVER_MODE={requested}")
    if settings.media_server != "nginx-rtmp":
        return Resolved("external", f"MEDIA_SERVER={settings.media_server} is run by the operator")
    if settings.node_env == "production":
        return Resolved(
            "external", "NODE_ENV=production: set MEDIA_SERVER_MODE=managed to run nginx here"
        )
    if settings.node_env == "test":  # test servers run side by side: no nginx on fixed ports
        return Resolved("none", "NODE_ENV=test: set MEDIA_SERVER_MODE=managed to run nginx here")
    if find_nginx(settings) is None:
        return Resolved("none", missing_reason(settings))
    return Resolved("managed", "nginx with the RTMP module is installed")


def _defaults(settings: Settings) -> dict[str, str]:
    """Settings that point at the managed nginx unless the operator set them (an empty value,
    as in .env.example, is unset; so is the placeholder CDN outside production)."""
    layout = MediaLayout.from_settings(settings)
    out: dict[str, str] = {}
    placeholder = Settings.model_fields["cdn_base_url"].default
    if not settings.cdn_base_url or (
        settings.cdn_base_url == placeholder and settings.node_env != "production"
    ):
        out["CDN_BASE_URL"] = f"http://{settings.rtmp_ingest_host}:{layout.http_port}"
    if not settings.nginx_rtmp_stat_url:
        out["NGINX_RTMP_STAT_URL"] = layout.stat_url
    if not settings.nginx_rtmp_hls_path:
        out["NGINX_RTMP_HLS_PATH"] = str(layout.hls_dir)
    return out


class _Terminated(Exception):
    pass


@contextlib.contextmanager
def media_server(settings: Settings, *, api_port: int) -> Iterator[Resolved]:
    """Around `uvicorn.run` in `bigfootlive serve`: resolve the mode, run nginx when managed."""
    resolved = resolve(settings)
    os.environ["MEDIA_SERVER_MODE"] = resolved.mode
    if resolved.mode != "managed":
        if resolved.mode == "none":
            log.warning("media_server_off", reason=resolved.reason)
        else:
            log.info("media_server", mode=resolved.mode, reason=resolved.reason)
        yield resolved
        return
    layout = dataclasses.replace(
        MediaLayout.from_settings(settings, api_port=api_port), error_log_to_stderr=True
    )
    binary = find_nginx(settings)
    if binary is None:  # resolve() found it a moment ago
        raise LayoutError(missing_reason(settings))
    for name, value in _defaults(settings).items():
        os.environ[name] = value
    supervisor = NginxSupervisor(layout, binary, api_port=api_port)
    supervisor.start()
    log.info("media_server", mode="managed", reason=resolved.reason, rtmp_port=layout.rtmp_port,
             http=layout.http_url)  # fmt: skip
    # uvicorn re-raises SIGTERM once it has shut down; with the default handler that would end
    # this process before nginx is stopped.
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise _Terminated

    signal.signal(signal.SIGTERM, on_term)
    terminated = False
    try:
        yield resolved
    except _Terminated:
        terminated = True
    finally:
        supervisor.stop()
        signal.signal(signal.SIGTERM, previous)
    if terminated:
        os.kill(os.getpid(), signal.SIGTERM)


def _health_check(layout: MediaLayout, answer: httpx.Response) -> str:
    """The check: ok when our nginx answered (its instance header), else who answered."""
    if answer.headers.get(INSTANCE_HEADER) == layout.instance and answer.status_code == 200:
        return "ok"
    if INSTANCE_HEADER in answer.headers:
        return (
            f"error: port {layout.http_port} answers as another BigfootLive media server "
            f"(another checkout or MEDIA_RUNTIME_DIR): set MEDIA_HTTP_PORT to a free port"
        )
    return (
        f"error: another program answers on port {layout.http_port} (HTTP "
        f"{answer.status_code}), not this server's nginx: stop it, or set MEDIA_HTTP_PORT to "
        "a free port"
    )


async def ready_status(settings: Settings) -> tuple[str | None, dict[str, str]]:
    """(the `/ready` check, or None when this process has no media server to answer for;
    the media server's description)."""
    mode = settings.media_server_mode
    if mode == "managed":
        layout = MediaLayout.from_settings(settings)
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                answer = await client.get(layout.health_url)
            check = _health_check(layout, answer)
        except httpx.HTTPError as exc:
            check = f"error: nginx is not answering ({type(exc).__name__})"
        return check, {"mode": "managed", "status": check, "origin": layout.http_url}
    if mode == "auto":
        return None, {"mode": "auto", "status": "not started by bigfootlive serve"}
    if mode == "none" and settings.media_server == "nginx-rtmp" and find_nginx(settings) is None:
        return None, {"mode": "none", "status": missing_reason(settings)}
    return None, {"mode": mode, "status": "off" if mode == "none" else "run by the operator"}
