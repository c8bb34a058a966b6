"""Stream health from recorded nginx /stat XML and SRS /api/v1/streams JSON."""

from __future__ import annotations

import json
import time

from bigfootlive.streaming.health import (
    HealthMonitor,
    StatsSource,
    StreamStats,
    parse_nginx_stat,
    parse_srs_streams,
)
from tests.fixtures.recorded import payload


def test_nginx_stat_is_read_in_our_terms():
    xml = payload("nginx_rtmp", "stat_while_live.xml", stream_name="pbabc").encode()
    stats = parse_nginx_stat(xml, "pbabc", now=1000.0)
    assert stats is not None
    assert stats.publishing
    assert (stats.width, stats.height, stats.fps) == (640, 360, 30.0)
    assert (stats.video_codec, stats.audio_codec) == ("H264", "AAC")
    assert stats.bitrate_kbps is None  # bw_in reads 0 during nginx's first 10 s
    assert stats.bytes_in == 241851
    assert parse_nginx_stat(xml, "someone-else", now=1000.0) is None


def test_srs_streams_are_read_in_our_terms():
    now = time.time()
    body = json.loads(
        payload(
            "srs",
            "streams.json",
            playback_id="pbabc",
            client_id="c1",
            live_ms=int((now - 60) * 1000),
        )
    )
    stats = parse_srs_streams(body, "pbabc", now=now)
    assert stats is not None
    assert stats.bitrate_kbps == 880
    assert 59 <= stats.uptime_seconds <= 61
    assert stats.viewers == 2
    assert (stats.width, stats.height) == (1280, 720)


class _Fixed(StatsSource):
    def __init__(self, samples):
        self.samples = list(samples)

    async def read(self, stream_name):
        return self.samples.pop(0) if self.samples else None


async def test_fresh_nginx_stream_is_ok_while_bw_in_still_reads_zero():
    sample = StreamStats(
        at=time.time(), publishing=True, bytes_in=500_000, fps=30.0, video_codec="H264",
        uptime_seconds=4.0,
    )  # fmt: skip
    report = await HealthMonitor(_Fixed([sample]), stale_seconds=15).report("pb", on_air=True)
    assert report.verdict == "ok"
    assert "warming_up" in report.reasons
    assert report.current is not None
    assert report.current["bitrate_kbps"] == 1000.0  # from bytes_in over the uptime


async def test_low_bitrate_and_fps_are_degraded():
    sample = StreamStats(
        at=time.time(), publishing=True, bytes_in=1, bitrate_kbps=40.0, fps=8.0,
        video_codec="H264", uptime_seconds=120,
    )  # fmt: skip
    report = await HealthMonitor(_Fixed([sample]), stale_seconds=15).report("pb", on_air=True)
    assert report.verdict == "degraded"
    assert {"low_bitrate", "low_fps"} <= set(report.reasons)


async def test_absent_stream_is_offline():
    report = await HealthMonitor(_Fixed([]), stale_seconds=15).report("pb", on_air=True)
    assert report.verdict == "offline"
    assert report.reasons == ["no_publisher"]


async def test_every_verdict_is_counted_by_verdict_only():
    from bigfootlive.observability.metrics import REGISTRY

    name = "bigfootlive_stream_health_verdicts_total"

    def count(verdict: str) -> float:
        return REGISTRY.get_sample_value(name, {"source": "api", "verdict": verdict}) or 0.0

    before = {v: count(v) for v in ("ok", "degraded", "offline")}
    degraded = StreamStats(
        at=time.time(), publishing=True, bytes_in=1, bitrate_kbps=40.0, fps=8.0,
        video_codec="H264", uptime_seconds=120,
    )  # fmt: skip
    await HealthMonitor(_Fixed([degraded]), stale_seconds=15).report("pb1", on_air=True)
    await HealthMonitor(_Fixed([]), stale_seconds=15).report("pb2", on_air=True)
    assert count("degraded") == before["degraded"] + 1
    assert count("offline") == before["offline"] + 1
    assert count("ok") == before["ok"]
