"""Stream health history: verdicts from the event container and the streaming domain, folded
per minute, read back in `GET /api/analytics/events/{id}` and paged through `.../health`."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from typing import Any

from bigfootlive.analytics import service as analytics
from bigfootlive.analytics.schemas import HealthSample
from bigfootlive.authz.roles import Role
from bigfootlive.containers.health import StreamSample
from bigfootlive.containers.worker import EventWorker
from bigfootlive.db import utcnow
from bigfootlive.streaming.health import StatsSource, StreamStats
from tests.analytics.conftest import live_event


def iso(minute: dt.datetime) -> str:
    return minute.isoformat().replace("+00:00", "Z")


def point(minute: dt.datetime, status: str, **figures: Any) -> dict[str, Any]:
    counts = {"ok": 0, "degraded": 0, "offline": 0, "unknown": 0, **figures.pop("counts")}
    return {
        "minute": iso(minute),
        "status": status,
        "samples": sum(counts.values()),
        "status_samples": counts,
        "reasons": [],
        "avg_bitrate_kbps": None,
        "min_bitrate_kbps": None,
        "avg_fps": None,
        "min_fps": None,
        "width": None,
        "height": None,
        "max_viewers": 0,
        **figures,
    }


async def script(state, tenant_id, event_id: str, base: dt.datetime) -> list[dict[str, Any]]:
    """Three minutes of verdicts with known figures; returns the history they must give."""
    m0, m1, m2 = (base + dt.timedelta(minutes=i) for i in range(3))
    samples = [
        (m0, HealthSample(status="ok", reasons=["warming_up"], bitrate_kbps=2000, fps=30,
                          width=1280, height=720, viewers=2)),
        (m0 + dt.timedelta(seconds=20), HealthSample(status="ok", bitrate_kbps=3000, fps=30,
                                                     width=1280, height=720, viewers=5)),
        (m0 + dt.timedelta(seconds=40), HealthSample(
            status="degraded", reasons=["low_bitrate", "low_fps"], bitrate_kbps=70, fps=12,
            width=640, height=360, viewers=4)),
        (m1 + dt.timedelta(seconds=5), HealthSample(status="offline", reasons=["no_publisher"])),
        (m1 + dt.timedelta(seconds=59), HealthSample(
            status="unknown", reasons=["media_server_unreachable"])),
        (m2 + dt.timedelta(seconds=30), HealthSample(status="ok", bitrate_kbps=2500, width=1920,
                                                     height=1080, viewers=1)),
    ]  # fmt: skip
    for at, sample in samples:
        await analytics.record_health(
            state, event_id=uuid.UUID(event_id), tenant_id=tenant_id, sample=sample, at=at
        )
    return [
        point(
            m0, "degraded", counts={"ok": 2, "degraded": 1},
            reasons=["low_bitrate", "low_fps", "warming_up"],
            avg_bitrate_kbps=1690.0, min_bitrate_kbps=70.0, avg_fps=24.0, min_fps=12.0,
            width=640, height=360, max_viewers=5,
        ),
        point(
            m1, "offline", counts={"offline": 1, "unknown": 1},
            reasons=["media_server_unreachable", "no_publisher"],
        ),
        point(
            m2, "ok", counts={"ok": 1}, avg_bitrate_kbps=2500.0, min_bitrate_kbps=2500.0,
            width=1920, height=1080, max_viewers=1,
        ),
    ]  # fmt: skip


def a_minute_ago() -> dt.datetime:
    return (utcnow() - dt.timedelta(minutes=10)).replace(second=0, microsecond=0)


async def test_scripted_health_verdicts_give_the_exact_per_minute_history(factory, client, state):
    tenant, streamer, event_id = await live_event(factory, client, state)
    expected = await script(state, tenant.id, event_id, a_minute_ago())

    figures = await client.get(f"/api/analytics/events/{event_id}", headers=streamer.headers)
    assert figures.status_code == 200, figures.text
    assert figures.json()["health"] == expected

    page = await client.get(
        f"/api/analytics/events/{event_id}/health", params={"limit": 2}, headers=streamer.headers
    )
    assert page.json() == {"items": expected[1:], "next_before": expected[1]["minute"]}
    older = await client.get(
        f"/api/analytics/events/{event_id}/health",
        params={"limit": 2, "before": page.json()["next_before"]},
        headers=streamer.headers,
    )
    assert older.json() == {"items": expected[:1], "next_before": None}


async def test_health_history_of_another_tenants_event_is_not_found(factory, client, state):
    tenant, _, event_id = await live_event(factory, client, state)
    await script(state, tenant.id, event_id, a_minute_ago())
    outsider = await factory.user(await factory.tenant(), role=Role.ADMIN)
    for path in (f"/api/analytics/events/{event_id}", f"/api/analytics/events/{event_id}/health"):
        response = await client.get(path, headers=outsider.headers)
        assert response.status_code == 404, response.text
        assert "health" not in response.text


async def test_health_page_refuses_a_naive_cursor_and_a_huge_limit(factory, client, state):
    _, streamer, event_id = await live_event(factory, client, state)
    path = f"/api/analytics/events/{event_id}/health"
    naive = await client.get(
        path, params={"before": "2026-01-01T00:00:00"}, headers=streamer.headers
    )
    assert naive.status_code == 422
    huge = await client.get(path, params={"limit": 100_000}, headers=streamer.headers)
    assert huge.status_code == 422


async def wait_for_quiet_minute() -> None:
    """Start a short scripted run well inside one wall-clock minute."""
    if utcnow().second >= 55:
        await asyncio.sleep(61 - utcnow().second)


class ScriptedProbe:
    """Answers with the scripted samples, then holds the next call until the test stops."""

    def __init__(self, samples: list[StreamSample]) -> None:
        self.samples = list(samples)
        self.done = asyncio.Event()

    async def sample(self, stream_name: str) -> StreamSample | None:
        if self.samples:
            return self.samples.pop(0)
        self.done.set()
        await asyncio.Event().wait()
        return None


async def test_the_event_container_records_its_health_verdicts(factory, client, state):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    created = await client.post("/api/events", json={"title": "Soon"}, headers=streamer.headers)
    event_id = created.json()["id"]
    probe = ScriptedProbe(
        [
            StreamSample(publishing=True, bytes_in=1_000, viewers=1, width=1280, height=720),
            StreamSample(
                publishing=True, bytes_in=9_000, bw_in_bps=2_500_000, viewers=4, width=1280,
                height=720,
            ),
            StreamSample(publishing=False),
        ]
    )  # fmt: skip
    state.settings.container_health_interval_seconds = 0.05
    await wait_for_quiet_minute()
    worker = EventWorker(
        state, uuid.UUID(event_id), handle="test", measure_process=False, takeover=True,
        probe=probe,
    )  # fmt: skip
    running = asyncio.create_task(worker.run())
    await asyncio.wait_for(probe.done.wait(), 10)
    worker.stop()
    assert await asyncio.wait_for(running, 10) == 0

    page = await client.get(f"/api/analytics/events/{event_id}/health", headers=streamer.headers)
    [minute] = page.json()["items"]
    assert minute == point(
        dt.datetime.fromisoformat(minute["minute"]), "offline", counts={"ok": 2, "offline": 1},
        reasons=["no_publisher", "warming_up"], avg_bitrate_kbps=2500.0,
        min_bitrate_kbps=2500.0, width=1280, height=720, max_viewers=4,
    )  # fmt: skip


class FixedStats(StatsSource):
    def __init__(self, stats: StreamStats) -> None:
        self.stats = stats
        self.reads = 0

    async def read(self, stream_name: str) -> StreamStats | None:
        self.reads += 1
        return self.stats


async def test_the_streaming_health_check_records_fresh_verdicts_only(factory, client, state):
    _, streamer, event_id = await live_event(factory, client, state)
    source = FixedStats(
        StreamStats(
            at=time.time(), publishing=True, bytes_in=10, bitrate_kbps=60.0, fps=25.0,
            width=854, height=480, video_codec="H264", uptime_seconds=300, viewers=7,
        )
    )  # fmt: skip
    state.stream_health.source = source
    await wait_for_quiet_minute()
    for _ in range(2):  # the second within a second: the same reading, not recorded again
        checked = await client.get(
            f"/api/streaming/events/{event_id}/health", headers=streamer.headers
        )
        assert checked.json()["verdict"] == "degraded"
    assert source.reads == 1

    page = await client.get(f"/api/analytics/events/{event_id}/health", headers=streamer.headers)
    [minute] = page.json()["items"]
    assert minute == point(
        dt.datetime.fromisoformat(minute["minute"]), "degraded", counts={"degraded": 1},
        reasons=["low_bitrate"], avg_bitrate_kbps=60.0, min_bitrate_kbps=60.0, avg_fps=25.0,
        min_fps=25.0, width=854, height=480, max_viewers=7,
    )  # fmt: skip
