"""A beacon buffer loses nothing: not when nobody starts it (job workers, event containers'
processes), not when sending its roll-up job fails."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

from bigfootlive.analytics.ingest import BeaconBuffer, active_viewers, minute_of, uniques_key
from bigfootlive.analytics.schemas import HeartbeatBeacon, StartBeacon
from bigfootlive.db import utcnow
from tests.analytics.conftest import live_event


async def timeline(client, streamer, event_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/analytics/events/{event_id}", headers=streamer.headers)
    assert response.status_code == 200, response.text
    points: list[dict[str, Any]] = response.json()["timeline"]
    return points


async def wait_for_figures(client, streamer, event_id: str, **expected: int) -> None:
    latest: list[dict[str, Any]] = []

    async def check() -> bool:
        latest[:] = await timeline(client, streamer, event_id)
        return bool(latest) and all(
            sum(p[name] for p in latest) == value for name, value in expected.items()
        )

    for _ in range(100):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"figures never became {expected}: {latest}")


async def test_a_buffer_never_started_rolls_up_what_it_is_given(factory, client, state):
    tenant, streamer, event_id = await live_event(factory, client, state)
    buffer = BeaconBuffer(state.cache, 3600, state.jobs)  # as in a process that never starts it
    now = utcnow()
    await buffer.add_beacons(
        uuid.UUID(event_id), tenant.id, "a:viewer-1",
        [StartBeacon(type="start", startup_ms=400),
         HeartbeatBeacon(type="heartbeat", watched_ms=10_000)],
        now,
    )  # fmt: skip
    await buffer.add_activity(uuid.UUID(event_id), tenant.id, "chat", now, 2)
    await buffer.add_activity(uuid.UUID(event_id), tenant.id, "reaction", now)
    await buffer.flush()  # what a job worker's `finalize` does: nothing left to lose
    await wait_for_figures(
        client, streamer, event_id, views_started=1, chat_messages=2, reactions=1
    )
    [point] = await timeline(client, streamer, event_id)
    assert point["watch_seconds"] == 10.0


class FailsOnce:
    """The app's real job queue, except that the first send fails (a broker outage)."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self.failed = False

    async def enqueue(self, *args: Any, **kwargs: Any) -> str:
        if not self.failed:
            self.failed = True
            raise ConnectionError("broker unavailable")
        result: str = await self.queue.enqueue(*args, **kwargs)
        return result


async def test_sums_of_a_flush_that_failed_go_out_with_the_next(factory, client, state):
    tenant, streamer, event_id = await live_event(factory, client, state)
    queue = FailsOnce(state.jobs)
    buffer = BeaconBuffer(state.cache, 3600, queue)  # type: ignore[arg-type]
    now = utcnow()
    await buffer.add_activity(uuid.UUID(event_id), tenant.id, "chat", now, 3)  # send fails
    assert queue.failed
    await buffer.add_activity(uuid.UUID(event_id), tenant.id, "chat", now, 1)
    await wait_for_figures(client, streamer, event_id, chat_messages=4)


class AnswerLostOnce:
    """The app's real job queue, except that the first send reaches the broker and then fails
    (the connection dropped before the broker's answer)."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self.batches: list[str] = []

    async def enqueue(self, *args: Any, **kwargs: Any) -> str:
        result: str = await self.queue.enqueue(*args, **kwargs)
        self.batches.append(kwargs["batch"])
        if len(self.batches) == 1:
            raise ConnectionError("connection lost before the broker's answer")
        return result


async def test_a_flush_sent_again_after_a_lost_answer_is_counted_once(factory, client, state):
    tenant, streamer, event_id = await live_event(factory, client, state)
    queue = AnswerLostOnce(state.jobs)
    buffer = BeaconBuffer(state.cache, 3600, queue)  # type: ignore[arg-type]
    now = utcnow()
    await buffer.add_activity(uuid.UUID(event_id), tenant.id, "chat", now, 3)  # "fails"
    await buffer.add_activity(uuid.UUID(event_id), tenant.id, "chat", now, 1)
    first, again, second = queue.batches
    assert first == again != second  # sent again as it was, then the new sums
    await wait_for_figures(client, streamer, event_id, chat_messages=4)
    assert not buffer.pending


class Recording:
    """The app's real job queue, recording every roll-up it sends; `fail_every`: every n-th
    send fails first (a broker outage mid-run)."""

    def __init__(self, queue: Any, fail_every: int = 0) -> None:
        self.queue = queue
        self.fail_every = fail_every
        self.calls = 0
        self.sent: list[dict[str, Any]] = []

    async def enqueue(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        if self.fail_every and self.calls % self.fail_every == 0:
            raise ConnectionError("broker unavailable")
        result: str = await self.queue.enqueue(*args, **kwargs)
        self.sent.append(kwargs)
        return result


async def test_no_beacon_is_lost_or_counted_twice_across_flushes_and_at_shutdown(
    factory, client, state
):
    """Requests keep adding while the buffer flushes every few milliseconds (some sends fail
    and go out with the next), then it stops: every beacon is in exactly one roll-up, and each
    viewer is counted once in the real-time counters."""
    tenant, _streamer, event_id = await live_event(factory, client, state)
    event = uuid.UUID(event_id)
    queue = Recording(state.jobs, fail_every=3)
    buffer = BeaconBuffer(state.cache, 0.02, queue)  # type: ignore[arg-type]
    buffer.start()
    now = utcnow()
    viewers = [f"a:viewer-{n}" for n in range(40)]

    async def player(viewer: str) -> None:
        for _ in range(25):
            beat = HeartbeatBeacon(type="heartbeat", watched_ms=1000)
            await buffer.add_beacons(event, tenant.id, viewer, [beat, beat], now)
            await asyncio.sleep(0.01)  # the run spans many flushes

    await asyncio.gather(*(player(v) for v in viewers))
    queue.fail_every = 0  # the broker is back for the last flush
    await buffer.stop()  # it waits for a flush under way, then sends what is left
    minutes = [m for job in queue.sent for m in job["minutes"]]
    assert sum(m["heartbeats"] for m in minutes) == 40 * 25 * 2
    assert sum(m["watch_ms"] for m in minutes) == 40 * 25 * 2 * 1000
    watched = {}
    for job in queue.sent:
        for row in job["viewers"]:
            watched[row["viewer"]] = watched.get(row["viewer"], 0) + row["watch_ms"]
    assert watched == dict.fromkeys(viewers, 25 * 2 * 1000)
    assert queue.calls > len(queue.sent) > 1  # several flushes, some of them retried
    minute = minute_of(now)
    assert await active_viewers(state.cache, event, minute) == 40
    assert int(await state.cache.get(uniques_key(event)) or 0) == 40
    assert buffer.take() == {}


async def test_a_viewer_is_counted_once_a_minute_for_as_long_as_the_setting_says(
    factory, client, state, redis_url
):
    """The 'seen' keys live `ANALYTICS_SEEN_TTL_SECONDS`: how long Redis holds one key per viewer
    and minute, and so where their number levels off (the soak benchmark's Redis warm-up)."""
    from bigfootlive.kit.backends.redis import open_redis_backends

    assert state.beacons.seen_ttl_seconds == state.settings.analytics_seen_ttl_seconds == 900
    tenant, _, event_id = await live_event(factory, client, state)
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    cache, _ = open_redis_backends(redis_url, prefix)
    try:
        buffer = BeaconBuffer(cache, 3600, state.jobs, seen_ttl_seconds=300)
        now = utcnow()
        beat = [HeartbeatBeacon(type="heartbeat", watched_ms=10_000)]
        await buffer.add_beacons(uuid.UUID(event_id), tenant.id, "a:viewer-1", beat, now)
        stamp = int(minute_of(now).timestamp())
        key = f"{prefix}an:{{{event_id}}}:seen:a:viewer-1:{stamp}"
        assert 290 < await cache.client.ttl(key) <= 300
        assert await active_viewers(cache, uuid.UUID(event_id), minute_of(now)) == 1
        await buffer.add_beacons(uuid.UUID(event_id), tenant.id, "a:viewer-1", beat, now)
        assert await active_viewers(cache, uuid.UUID(event_id), minute_of(now)) == 1  # once
    finally:
        keys = [k async for k in cache.client.scan_iter(match=prefix + "*")]
        if keys:
            await cache.client.delete(*keys)
        await cache.client.aclose()


async def test_a_large_flush_at_shutdown_reaches_every_aggregate(factory, client, state):
    """A started buffer that never reached its interval: `stop()` (the app's shutdown) sends
    what it holds, and the roll-up's upserts (one statement run for every row) carry 1,200
    viewers and two minutes into the figures exactly; a second stop-flush adds to the same
    rows instead of replacing them."""
    tenant, streamer, event_id = await live_event(factory, client, state)
    event = uuid.UUID(event_id)
    now = utcnow()
    earlier = now - dt.timedelta(minutes=1)
    viewers = [f"a:viewer-{n:05d}" for n in range(1200)]

    async def run_once(heartbeat_ms: int) -> None:
        buffer = BeaconBuffer(state.cache, 3600, state.jobs)
        buffer.start()
        for n, viewer in enumerate(viewers):
            await buffer.add_beacons(
                event, tenant.id, viewer,
                [StartBeacon(type="start", ts=earlier, startup_ms=500 + n % 2 * 200),
                 HeartbeatBeacon(type="heartbeat", watched_ms=heartbeat_ms, rebuffer_ms=100,
                                 rebuffer_count=1, bitrate_kbps=2000 + n % 2 * 1000)],
                now,
            )  # fmt: skip
        assert buffer.pending
        await buffer.stop()
        assert not buffer.pending

    await run_once(10_000)
    await wait_for_figures(client, streamer, event_id, views_started=1200, watch_seconds=12_000)
    await run_once(5_000)
    await wait_for_figures(client, streamer, event_id, views_started=2400, watch_seconds=18_000)
    response = await client.get(f"/api/analytics/events/{event_id}", headers=streamer.headers)
    figures = response.json()
    assert len(figures["timeline"]) == 2  # the start beacons' minute and this one
    assert figures["viewers"]["unique"] == 1200
    assert figures["watch_time"]["total_seconds"] == 18_000
    assert figures["qoe"] == {
        "avg_startup_ms": 600.0,
        "rebuffer_ratio": 2400 * 100 / 18_000_000,
        "rebuffer_events": 2400,
        "avg_bitrate_kbps": 2500.0,
    }
