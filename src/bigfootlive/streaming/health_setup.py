"""The stream health monitor this process runs, built from the settings: which media server's
statistics it polls (nginx-rtmp, SRS or Node Media Server) and where it can read the HLS to
measure frame rate and keyframes."""

from __future__ import annotations

from pathlib import Path

import httpx

from bigfootlive.config import Settings
from bigfootlive.streaming.health import (
    HealthMonitor,
    MediaMeter,
    NginxStatSource,
    SrsStatSource,
    StatsSource,
)
from bigfootlive.streaming.nms_api import NmsStatSource


def make_health_monitor(settings: Settings) -> HealthMonitor:
    # A client only when there is a stats URL to poll: making one loads the CA bundle.
    client: httpx.AsyncClient | None = None
    source: StatsSource | None = None
    if settings.media_server_off:  # MEDIA_SERVER_MODE=none: no server to ask
        pass
    elif settings.media_server == "srs" and settings.srs_api_url:
        client = httpx.AsyncClient(timeout=2.0)
        source = SrsStatSource(client, settings.srs_api_url)
    elif settings.media_server == "node-media-server" and settings.nms_api_url:
        if settings.nms_api_secret is not None:
            client = httpx.AsyncClient(timeout=2.0)
            secret = settings.nms_api_secret.get_secret_value()
            source = NmsStatSource(client, settings.nms_api_url, secret)
    elif settings.nginx_rtmp_stat_url:
        client = httpx.AsyncClient(timeout=2.0)
        source = NginxStatSource(client, settings.nginx_rtmp_stat_url)
    monitor = HealthMonitor(source, settings.health_stale_seconds, meter=_meter(settings))
    monitor.client = client
    return monitor


def _meter(settings: Settings) -> MediaMeter | None:
    """Where this host can read the stream's HLS: the media server's own output
    (`NGINX_RTMP_HLS_PATH`), else the copy-only recorder's (local recordings)."""
    hls_path = settings.nginx_rtmp_hls_path
    recordings = Path(settings.recordings_dir) if settings.recordings_storage == "local" else None
    if hls_path is None and recordings is None:
        return None

    def playlists(stream_name: str) -> list[Path]:
        found: list[Path] = []
        if hls_path is not None:
            found.append(Path(hls_path) / f"{stream_name}.m3u8")
        if recordings is not None:
            found.append(recordings / "live" / stream_name / "source" / "index.m3u8")
        return found

    return MediaMeter(settings.ffprobe_path, playlists)
