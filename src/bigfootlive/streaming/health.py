"""Stream health from the media server's own statistics, with a little history per event.

nginx-rtmp: `GET /stat` (XML, `rtmp_stat all`). SRS: `GET /api/v1/streams`. nginx's `bw_in` is
averaged over 10 s and reads 0 for a fresh publish, so the bitrate falls back to the growth
of `bytes_in` between samples (or since the publish began).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import httpx
import structlog

from bigfootlive.kit import jsonparse
from bigfootlive.kit.backoff import Backoff
from bigfootlive.observability import metrics
from bigfootlive.streaming.nginx_rtmp import is_viewer

log = structlog.get_logger(__name__)

MIN_BITRATE_KBPS = 100.0
MIN_FPS = 15.0
WARMUP_SECONDS = 12.0


@dataclass(frozen=True, slots=True)
class StreamStats:
    """One reading of a stream, in our own terms."""

    at: float
    publishing: bool
    bytes_in: int = 0
    bitrate_kbps: float | None = None  # as reported by the server (None: not yet known)
    fps: float | None = None
    frames: int | None = None
    width: int | None = None
    height: int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    uptime_seconds: float = 0.0
    viewers: int = 0
    keyframe_interval_seconds: float | None = None
    # "measured" (from the media's packet timestamps) or "declared" (the encoder's metadata)
    fps_source: str | None = None


@dataclass
class HealthReport:
    verdict: Literal["ok", "degraded", "offline"]
    reasons: list[str]
    current: dict[str, Any] | None
    history: list[dict[str, Any]] = field(default_factory=list)
    fresh: bool = False  # the media server was asked this time (not the last second's answer)

    def __post_init__(self) -> None:
        metrics.STREAM_HEALTH_VERDICTS.labels("api", self.verdict).inc()


class StatsSource:
    """Reads one media server's statistics; `read` returns None when the stream is absent."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def read(self, stream_name: str) -> StreamStats | None:
        raise NotImplementedError


class NginxStatSource(StatsSource):
    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        super().__init__(client)
        self.url = url

    async def read(self, stream_name: str) -> StreamStats | None:
        response = await self.client.get(self.url)
        response.raise_for_status()
        return parse_nginx_stat(response.content, stream_name, time.time())


def _int(value: str | None) -> int | None:
    try:
        return None if value is None else int(float(value))
    except ValueError:
        return None


def parse_nginx_stat(xml: bytes, stream_name: str, now: float) -> StreamStats | None:
    root = ET.fromstring(xml)  # noqa: S314
    for stream in root.iter("stream"):
        if stream.findtext("name") != stream_name:
            continue
        video = stream.find("meta/video")
        audio = stream.find("meta/audio")
        bw_in = _int(stream.findtext("bw_in")) or 0
        fps_text = None if video is None else video.findtext("frame_rate")
        return StreamStats(
            at=now,
            publishing=stream.find("publishing") is not None,
            bytes_in=_int(stream.findtext("bytes_in")) or 0,
            bitrate_kbps=bw_in / 1000 if bw_in else None,
            fps=float(fps_text) if fps_text else None,
            fps_source="declared" if fps_text else None,
            width=None if video is None else _int(video.findtext("width")),
            height=None if video is None else _int(video.findtext("height")),
            video_codec=None if video is None else video.findtext("codec"),
            audio_codec=None if audio is None else audio.findtext("codec"),
            uptime_seconds=(_int(stream.findtext("time")) or 0) / 1000,
            viewers=sum(1 for client in stream.findall("client") if is_viewer(client)),
        )
    return None


class SrsStatSource(StatsSource):
    def __init__(self, client: httpx.AsyncClient, api_url: str) -> None:
        super().__init__(client)
        self.url = api_url.rstrip("/") + "/api/v1/streams?count=1000"

    async def read(self, stream_name: str) -> StreamStats | None:
        response = await self.client.get(self.url)
        response.raise_for_status()
        return parse_srs_streams(jsonparse.loads(response.content), stream_name, time.time())


def parse_srs_streams(body: dict[str, Any], stream_name: str, now: float) -> StreamStats | None:
    for stream in body.get("streams", []):
        if stream.get("name") != stream_name:
            continue
        video = stream.get("video") or {}
        audio = stream.get("audio") or {}
        kbps = (stream.get("kbps") or {}).get("recv_30s")
        publish = stream.get("publish") or {}
        return StreamStats(
            at=now,
            publishing=bool(publish.get("active")),
            bytes_in=int(stream.get("recv_bytes") or 0),
            bitrate_kbps=float(kbps) if kbps else None,
            frames=_int(str(stream["frames"])) if "frames" in stream else None,
            width=video.get("width"),
            height=video.get("height"),
            video_codec=video.get("codec"),
            audio_codec=audio.get("codec"),
            uptime_seconds=_srs_uptime(stream.get("live_ms"), now),
            viewers=max(0, int(stream.get("clients") or 0) - 1),
        )
    return None


def _srs_uptime(live_ms: object, now: float) -> float:
    """SRS reports `live_ms` as the wall-clock time (ms) the stream went live."""
    if not isinstance(live_ms, int | float) or live_ms <= 0:
        return 0.0
    return max(0.0, now - live_ms / 1000)


@dataclass(frozen=True, slots=True)
class Measured:
    fps: float | None
    keyframe_interval_seconds: float | None


MEASURE_SEGMENTS = 4


def measure_packets(lines: str) -> Measured:
    """fps and keyframe interval from ffprobe's `pts_time,flags` lines of one video stream."""
    times: list[float] = []
    keys: list[float] = []
    for line in lines.splitlines():
        pts, _, flags = line.strip().partition(",")
        try:
            at = float(pts)
        except ValueError:
            continue
        times.append(at)
        if flags.startswith("K"):
            keys.append(at)
    times.sort()
    keys.sort()
    fps = None
    if len(times) >= 2 and times[-1] > times[0]:
        fps = round((len(times) - 1) / (times[-1] - times[0]), 2)
    interval = None
    if len(keys) >= 2:
        interval = round((keys[-1] - keys[0]) / (len(keys) - 1), 2)
    return Measured(fps, interval)


def _last_segments(playlist: Path, count: int) -> list[Path]:
    lines = [line.strip() for line in playlist.read_text().splitlines()]
    names = [line for line in lines if line and not line.startswith("#")]
    return [playlist.parent / name for name in names[-count:] if Path(name).name == name]


class MediaMeter:
    """Frame rate and keyframe interval measured from the stream itself: ffprobe reads the
    packet timestamps of the last few HLS segments of the media server's own output (or of the
    copy-only recorder's), never the encoder's declared metadata. Re-measured only when a new
    segment appears."""

    def __init__(
        self, ffprobe: str, playlists: Callable[[str], list[Path]], *, timeout: float = 5.0
    ) -> None:
        self.ffprobe = ffprobe
        self.playlists = playlists
        self.timeout = timeout
        self._last: dict[str, tuple[str, Measured]] = {}

    async def measure(self, stream_name: str) -> Measured | None:
        playlist = next((p for p in self.playlists(stream_name) if p.is_file()), None)
        if playlist is None:
            return None
        try:
            segments = [s for s in _last_segments(playlist, MEASURE_SEGMENTS) if s.is_file()]
        except OSError:
            return None
        if not segments:
            return None
        marker = str(segments[-1])
        known = self._last.get(stream_name)
        if known is not None and known[0] == marker:
            return known[1]
        try:
            process = await asyncio.create_subprocess_exec(
                self.ffprobe, "-v", "error", "-select_streams", "v:0",
                "-show_entries", "packet=pts_time,flags", "-of", "csv=p=0",
                "concat:" + "|".join(str(s) for s in segments),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        except OSError:
            log.warning("ffprobe_unavailable", path=self.ffprobe)
            return None
        try:
            out, _ = await asyncio.wait_for(process.communicate(), self.timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            return None
        measured = measure_packets(out.decode(errors="replace"))
        self._last[stream_name] = (marker, measured)
        return measured


class HealthMonitor:
    """Samples on demand (at most once a second per event) and keeps the last samples. While
    the media server does not answer, it is asked again only after a back-off (kit.backoff:
    0.5 s doubling to 30 s, reset by an answer), whichever event is asked about: the studio
    pages polling health do not queue requests to a server that is down."""

    def __init__(
        self,
        source: StatsSource | None,
        stale_seconds: float,
        keep: int = 60,
        meter: MediaMeter | None = None,
    ) -> None:
        self.source = source
        self.meter = meter
        self.stale_seconds = stale_seconds
        self.keep = keep
        self._history: dict[str, deque[StreamStats]] = {}
        self._asked: dict[str, float] = {}  # when each stream's stats were last read
        self.client: httpx.AsyncClient | None = None
        self.backoff = Backoff()
        self.clock: Callable[[], float] = time.monotonic  # a test moves its own
        self._retry_at = 0.0  # (clock) the media server failed: not asked again before this

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def report(self, stream_name: str, *, on_air: bool) -> HealthReport:
        if self.source is None:
            return HealthReport("offline", ["no_stats_source_configured"], None)
        history = self._history.setdefault(stream_name, deque(maxlen=self.keep))
        if self.backoff.failing and self.clock() < self._retry_at:
            return HealthReport("offline", ["media_server_unreachable"], None)
        now = time.time()
        fresh = now - self._asked.get(stream_name, 0.0) >= 1.0
        try:
            if fresh:
                self._asked[stream_name] = now
                sample = await self.source.read(stream_name)
                if sample is not None and self.meter is not None:
                    sample = await self._measured(sample, stream_name)
                if sample is not None:
                    history.append(self._derive(sample, history))
                elif history:
                    history.clear()
        except (httpx.HTTPError, ET.ParseError, ValueError) as exc:
            if not self.backoff.failing:  # once per outage, not once per question
                log.warning("stream_stats_unavailable", error=type(exc).__name__)
            self._retry_at = self.clock() + self.backoff.failed()
            return HealthReport("offline", ["media_server_unreachable"], None, fresh=True)
        if fresh:
            self.backoff.succeeded()
        report = self._judge(history, on_air=on_air)
        report.fresh = fresh
        return report

    async def _measured(self, sample: StreamStats, stream_name: str) -> StreamStats:
        """The frame rate measured from the stream's segments wherever this host can read them;
        otherwise the encoder's declared rate, labelled `fps_source: declared`."""
        measured = None
        if self.meter is not None and sample.publishing:
            measured = await self.meter.measure(stream_name)
        if measured is None or measured.fps is None:
            return sample
        return replace(
            sample,
            fps=measured.fps,
            fps_source="measured",
            keyframe_interval_seconds=measured.keyframe_interval_seconds,
        )

    @staticmethod
    def _derive(sample: StreamStats, history: deque[StreamStats]) -> StreamStats:
        """Fill bitrate and fps from counters when the server has no figure yet."""
        values = asdict(sample)
        prev = history[-1] if history else None
        if sample.bitrate_kbps is None:
            if prev is not None and sample.at > prev.at and sample.bytes_in >= prev.bytes_in:
                values["bitrate_kbps"] = (
                    (sample.bytes_in - prev.bytes_in) * 8 / 1000 / (sample.at - prev.at)
                )
            elif sample.uptime_seconds > 0:
                values["bitrate_kbps"] = sample.bytes_in * 8 / 1000 / sample.uptime_seconds
        if sample.fps is None and sample.frames is not None:
            if prev is not None and prev.frames is not None and sample.at > prev.at:
                values["fps"] = (sample.frames - prev.frames) / (sample.at - prev.at)
            elif sample.uptime_seconds > 0:
                values["fps"] = sample.frames / sample.uptime_seconds
        return StreamStats(**values)

    def _judge(self, history: deque[StreamStats], *, on_air: bool) -> HealthReport:
        past = [asdict(s) for s in history]
        if not history or not history[-1].publishing:
            why = ["no_publisher"] if on_air or not history else ["not_publishing"]
            return HealthReport("offline", why, past[-1] if past else None, past)
        current = history[-1]
        reasons: list[str] = []
        stalled = [s for s in history if current.at - s.at >= self.stale_seconds]
        if stalled and stalled[-1].bytes_in == current.bytes_in:
            return HealthReport("offline", ["no_data_received"], past[-1], past)
        warming = current.uptime_seconds < WARMUP_SECONDS
        if current.bitrate_kbps is not None and current.bitrate_kbps < MIN_BITRATE_KBPS:
            reasons.append("low_bitrate")
        if current.video_codec is None and not warming:
            reasons.append("no_video")
        if current.fps is not None and current.fps < MIN_FPS:
            reasons.append("low_fps")
        if warming:
            reasons.append("warming_up")
        if set(reasons) - {"warming_up"}:
            return HealthReport("degraded", reasons, past[-1], past)
        return HealthReport("ok", reasons, past[-1], past)
