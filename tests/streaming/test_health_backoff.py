"""The API's stream health asks a media server that does not answer again only after a
back-off (0.5 s doubling to 30 s, reset by an answer), with a clock the test moves."""

from __future__ import annotations

import itertools
import time

import httpx

from bigfootlive.streaming.health import HealthMonitor, StatsSource, StreamStats


class Flaky(StatsSource):
    """A media server that is down until `up` is set; counts what it is asked."""

    def __init__(self) -> None:
        super().__init__(httpx.AsyncClient())
        self.up = False
        self.reads = 0

    async def read(self, stream_name: str) -> StreamStats | None:
        self.reads += 1
        if not self.up:
            raise httpx.ConnectError("connection refused")
        return StreamStats(at=time.time(), publishing=True, bytes_in=1, uptime_seconds=60.0)


async def test_a_media_server_that_is_down_is_asked_after_a_back_off():
    source = Flaky()
    monitor = HealthMonitor(source, stale_seconds=15)
    tenths = [0]  # whole tenths of a second: no drift from adding 0.1 up
    monitor.clock = lambda: 100.0 + tenths[0] / 10
    asked_at: list[float] = []
    # a studio page per event polls every 0.1 s (a new event each time: no 1 s per-event limit)
    for n in range(400):
        reads = source.reads
        report = await monitor.report(f"pb{n}", on_air=True)
        assert report.verdict == "offline"
        assert report.reasons == ["media_server_unreachable"]
        if source.reads > reads:
            asked_at.append(tenths[0] / 10)
        tenths[0] += 1
    gaps = [round(b - a, 1) for a, b in itertools.pairwise(asked_at)]
    assert gaps == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]  # then 30 s (past this test's 40 s)
    # the server is back: the next question after the pause reads it, and the pace resets
    source.up = True
    tenths[0] += 300
    report = await monitor.report("pb-back", on_air=True)
    assert report.fresh
    assert "media_server_unreachable" not in report.reasons
    assert not monitor.backoff.failing
    source.up = False
    before = source.reads
    await monitor.report("pb-down-again", on_air=True)
    tenths[0] += 4
    await monitor.report("pb-too-soon", on_air=True)
    tenths[0] += 1
    await monitor.report("pb-after-half-a-second", on_air=True)
    assert source.reads == before + 2
    await source.client.aclose()
