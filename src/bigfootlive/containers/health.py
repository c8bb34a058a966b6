"""Stream health, read from the media server's stats (one small probe per server).

This is the containers' own, deliberately small monitor; the streaming domain's health module
can replace the probe (any `HealthProbe`) without touching the worker.
"""

from __future__ import annotations

import enum
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import httpx

from bigfootlive.analytics.schemas import HealthSample, HealthStatus
from bigfootlive.config import Settings
from bigfootlive.kit.backoff import Backoff
from bigfootlive.observability import metrics
from bigfootlive.streaming.nginx_rtmp import is_viewer

MAX_STAT_BYTES = 4 * 1024 * 1024


class Health(enum.StrEnum):
    HEALTHY = "healthy"
    STARTING = "starting"  # publishing, but too new to judge (nginx-rtmp's bw_in lags ~10 s)
    STALLED = "stalled"  # publishing, but no new bytes for HEALTH_STALE_SECONDS
    OFFLINE = "offline"  # no publisher
    UNKNOWN = "unknown"  # no stats source configured, or it failed


@dataclass(frozen=True, slots=True)
class StreamSample:
    publishing: bool
    bytes_in: int = 0
    bw_in_bps: int = 0
    viewers: int = 0
    width: int | None = None
    height: int | None = None
    video_codec: str | None = None
    uptime_ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class HealthProbe(Protocol):
    async def sample(self, stream_name: str) -> StreamSample | None:
        """The stream's counters now; None when the stats source cannot be read."""
        ...


def parse_nginx_rtmp_stat(xml: bytes, stream_name: str) -> StreamSample:
    """One stream's counters from nginx-rtmp's `rtmp_stat all` XML (any application)."""
    root = ET.fromstring(xml)  # noqa: S314
    for stream in root.iter("stream"):
        if stream.findtext("name") != stream_name:
            continue
        clients = stream.findall("client")
        video = stream.find("meta/video")
        return StreamSample(
            publishing=stream.find("publishing") is not None,
            bytes_in=int(stream.findtext("bytes_in") or 0),
            bw_in_bps=int(stream.findtext("bw_in") or 0),
            viewers=sum(1 for c in clients if is_viewer(c)),
            width=_int(video.findtext("width")) if video is not None else None,
            height=_int(video.findtext("height")) if video is not None else None,
            video_codec=video.findtext("codec") if video is not None else None,
            uptime_ms=int(stream.findtext("time") or 0),
        )
    return StreamSample(publishing=False)


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


class NginxRtmpStatProbe:
    def __init__(self, stat_url: str, *, timeout: float = 2.0) -> None:
        self.stat_url = stat_url
        self.timeout = timeout

    async def sample(self, stream_name: str) -> StreamSample | None:
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as http:
                response = await http.get(self.stat_url)
        except httpx.HTTPError:
            return None
        if response.status_code != 200 or len(response.content) > MAX_STAT_BYTES:
            return None
        try:
            return parse_nginx_rtmp_stat(response.content, stream_name)
        except ET.ParseError:
            return None


class NoProbe:
    """No stats source configured: health stays `unknown`."""

    async def sample(self, stream_name: str) -> StreamSample | None:
        return None


class ProbePace:
    """When to probe next: every `interval` while the media server answers; after failures in
    a row, the back-off (kit.backoff: 0.5 s doubling to 30 s, reset by an answer) once it is
    longer than the interval, so a server that is down is not asked every few seconds."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.backoff = Backoff()
        self.wait = interval

    def after(self, *, answered: bool) -> float:
        if answered:
            self.backoff.succeeded()
            self.wait = self.interval
        else:
            self.wait = max(self.interval, self.backoff.failed())
        return self.wait


class HealthTracker:
    """Turns successive samples into a health verdict (stalled = bytes stopped growing)."""

    def __init__(self, stale_seconds: float) -> None:
        self.stale_seconds = stale_seconds
        self.last_bytes = -1
        self.last_growth: float | None = None

    def judge(self, sample: StreamSample | None, now: float) -> Health:
        if sample is None:
            return Health.UNKNOWN
        if not sample.publishing:
            self.last_bytes, self.last_growth = -1, None
            return Health.OFFLINE
        if sample.bytes_in > self.last_bytes:
            first = self.last_growth is None
            self.last_bytes, self.last_growth = sample.bytes_in, now
            return Health.STARTING if first and sample.bw_in_bps == 0 else Health.HEALTHY
        if self.last_growth is not None and now - self.last_growth >= self.stale_seconds:
            return Health.STALLED
        return Health.HEALTHY


# The containers' verdicts in the vocabulary of the recorded health history.
_AS_RECORDED: dict[Health, tuple[HealthStatus, list[str]]] = {
    Health.HEALTHY: ("ok", []),
    Health.STARTING: ("ok", ["warming_up"]),
    Health.STALLED: ("offline", ["no_data_received"]),
    Health.OFFLINE: ("offline", ["no_publisher"]),
    Health.UNKNOWN: ("unknown", ["media_server_unreachable"]),
}


def health_sample(health: Health, sample: StreamSample | None) -> HealthSample:
    """One verdict as the analytics domain records it."""
    status, reasons = _AS_RECORDED[health]
    metrics.STREAM_HEALTH_VERDICTS.labels("container", health.value).inc()
    if sample is None:
        return HealthSample(status=status, reasons=reasons)
    return HealthSample(
        status=status,
        reasons=reasons,
        bitrate_kbps=sample.bw_in_bps / 1000 if sample.bw_in_bps else None,
        width=sample.width,
        height=sample.height,
        viewers=sample.viewers,
    )


def make_probe(settings: Settings) -> HealthProbe:
    """nginx-rtmp's `/stat` when NGINX_RTMP_STAT_URL is set; nothing is asked with
    MEDIA_SERVER_MODE=none, whatever the URL says."""
    if settings.media_server_off or not settings.nginx_rtmp_stat_url:
        return NoProbe()
    return NginxRtmpStatProbe(settings.nginx_rtmp_stat_url)
