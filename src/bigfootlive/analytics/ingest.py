"""Beacon ingest: real-time counters in the cache (Redis when configured) at once, everything
else summed in memory per (event, minute) and rolled up into the database by one job per flush.

A flush is one `analytics.tasks.apply_rollup` job with a batch id; the job records the id in
the same transaction as the sums, so a redelivered job never counts twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from bigfootlive.analytics.schemas import HeartbeatBeacon, StartBeacon, StopBeacon
from bigfootlive.kit.backends import Cache

if TYPE_CHECKING:
    from bigfootlive.jobs.queue import JobQueue

log = structlog.get_logger(__name__)

MINUTE_FIELDS = (
    "views_started",
    "views_ended",
    "heartbeats",
    "watch_ms",
    "rebuffer_ms",
    "rebuffer_events",
    "startup_ms_sum",
    "startup_samples",
    "bitrate_kbps_sum",
    "bitrate_samples",
    "chat_messages",
    "reactions",
)
# Beacons may arrive late (batched by the player, retried); older ones are counted "now".
MAX_BEACON_AGE = dt.timedelta(minutes=5)
MAX_CLOCK_SKEW = dt.timedelta(seconds=30)


# The job that tasks.py registers under this name (services never import tasks.py).
APPLY_ROLLUP_TASK = "analytics.tasks.apply_rollup"


def minute_of(when: dt.datetime) -> dt.datetime:
    return when.replace(second=0, microsecond=0)


def beacon_time(ts: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    if ts is None or ts.tzinfo is None:
        return now
    if now - MAX_BEACON_AGE <= ts <= now + MAX_CLOCK_SKEW:
        return min(ts, now)
    return now


# ---- cache keys for real-time figures ----------------------------------------------------


def active_key(event_id: uuid.UUID, minute: dt.datetime) -> str:
    return f"an:{event_id}:active:{int(minute.timestamp())}"


def uniques_key(event_id: uuid.UUID) -> str:
    return f"an:{event_id}:uniques"


def chat_key(minute: dt.datetime) -> str:
    return f"an:chat:{int(minute.timestamp())}"


async def active_viewers(cache: Cache, event_id: uuid.UUID, minute: dt.datetime) -> int:
    raw = await cache.get(active_key(event_id, minute))
    return int(raw) if raw else 0


async def viewers_now(cache: Cache, event_id: uuid.UUID, now: dt.datetime) -> int:
    """Viewers seen this minute or the one before (heartbeats come every 10-30 s)."""
    this = minute_of(now)
    return max(
        await active_viewers(cache, event_id, this),
        await active_viewers(cache, event_id, this - dt.timedelta(minutes=1)),
    )


@dataclass
class _EventBuffer:
    tenant_id: uuid.UUID
    minutes: dict[dt.datetime, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: dict.fromkeys(MINUTE_FIELDS, 0))
    )
    viewers: dict[str, list[Any]] = field(default_factory=dict)  # viewer -> [first seen, ms]


class BeaconBuffer:
    """Sums beacons and activity in memory and sends them as roll-up jobs on `queue`.

    Started (`start()`, by the API's lifespan) it flushes every `flush_seconds`. Never started
    (a job worker, an event container's process) or stopped, it flushes at once on every add:
    nothing waits in a buffer that nobody flushes. Sums whose job could not be sent stay for
    the next flush; `stop()` (also in `AppState.close()`) makes the last one.
    """

    def __init__(self, cache: Cache, flush_seconds: float, queue: JobQueue) -> None:
        self.cache = cache
        self.flush_seconds = flush_seconds
        self.queue = queue
        self._events: dict[uuid.UUID, _EventBuffer] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def _event(self, event_id: uuid.UUID, tenant_id: uuid.UUID) -> _EventBuffer:
        buf = self._events.get(event_id)
        if buf is None:
            buf = self._events[event_id] = _EventBuffer(tenant_id)
        return buf

    async def add_beacons(
        self,
        event_id: uuid.UUID,
        tenant_id: uuid.UUID,
        viewer: str,
        beacons: list[StartBeacon | HeartbeatBeacon | StopBeacon],
        now: dt.datetime,
    ) -> None:
        # Real-time first: one viewer counts once per minute and once per event, fleet-wide.
        # A flush reads these counters for the minutes it carries, so they must be up to date
        # before the sums below can be flushed.
        times = [beacon_time(b.ts, now) for b in beacons]
        for minute in {minute_of(t) for t in times}:
            stamp = int(minute.timestamp())
            if await self.cache.add(f"an:{event_id}:seen:{viewer}:{stamp}", b"1", ttl=900):
                await self.cache.incr(active_key(event_id, minute), ttl=3 * 3600)
        if await self.cache.add(f"an:{event_id}:viewer:{viewer}", b"1", ttl=3 * 24 * 3600):
            await self.cache.incr(uniques_key(event_id), ttl=3 * 24 * 3600)
        # Then the sums, with no await in between (a flush cannot take half of them).
        buf = self._event(event_id, tenant_id)
        watched = 0
        for beacon, at in zip(beacons, times, strict=True):
            row = buf.minutes[minute_of(at)]
            if isinstance(beacon, StartBeacon):
                row["views_started"] += 1
                if beacon.startup_ms is not None:
                    row["startup_ms_sum"] += beacon.startup_ms
                    row["startup_samples"] += 1
            elif isinstance(beacon, HeartbeatBeacon):
                row["heartbeats"] += 1
                row["watch_ms"] += beacon.watched_ms
                row["rebuffer_ms"] += beacon.rebuffer_ms
                row["rebuffer_events"] += beacon.rebuffer_count
                watched += beacon.watched_ms
                if beacon.bitrate_kbps is not None:
                    row["bitrate_kbps_sum"] += beacon.bitrate_kbps
                    row["bitrate_samples"] += 1
            else:
                row["views_ended"] += 1
                row["watch_ms"] += beacon.watched_ms
                watched += beacon.watched_ms
        first_seen = min(times)
        entry = buf.viewers.get(viewer)
        if entry is None:
            buf.viewers[viewer] = [first_seen, watched]
        else:
            entry[0], entry[1] = min(entry[0], first_seen), entry[1] + watched
        await self._flush_unless_started()

    async def add_activity(
        self,
        event_id: uuid.UUID,
        tenant_id: uuid.UUID,
        kind: str,
        now: dt.datetime,
        amount: int = 1,
    ) -> None:
        minute = minute_of(now)
        row = self._event(event_id, tenant_id).minutes[minute]
        if kind == "chat":
            row["chat_messages"] += amount
            await self.cache.incr(chat_key(minute), amount, ttl=3600)
        elif kind == "reaction":
            row["reactions"] += amount
        else:
            raise ValueError(f"unknown activity {kind!r}")
        await self._flush_unless_started()

    @property
    def started(self) -> bool:
        return self._task is not None

    async def _flush_unless_started(self) -> None:
        if not self.started:
            try:
                await self.flush()
            except Exception:  # kept: the next add, flush or `stop()` sends it
                log.exception("analytics_flush_failed")

    def take(self) -> dict[uuid.UUID, _EventBuffer]:
        events, self._events = self._events, {}
        return events

    def _put_back(self, events: dict[uuid.UUID, _EventBuffer]) -> None:
        """Add sums taken for a flush that failed back into the buffer."""
        for event_id, taken in events.items():
            buf = self._event(event_id, taken.tenant_id)
            for minute, sums in taken.minutes.items():
                row = buf.minutes[minute]
                for name, value in sums.items():
                    row[name] += value
            for viewer, (first_seen, watched) in taken.viewers.items():
                entry = buf.viewers.get(viewer)
                if entry is None:
                    buf.viewers[viewer] = [first_seen, watched]
                else:
                    entry[0], entry[1] = min(entry[0], first_seen), entry[1] + watched

    async def flush(self) -> str | None:
        """Send what was buffered as one roll-up job; returns its batch id. If the job cannot
        be sent, the sums go back into the buffer for the next flush (and the error is raised)."""
        async with self._lock:
            events = self.take()
            if not events:
                return None
            try:
                return await self._send(events)
            except BaseException:
                self._put_back(events)
                raise

    async def _send(self, events: dict[uuid.UUID, _EventBuffer]) -> str:
        minutes: list[dict[str, Any]] = []
        viewers: list[dict[str, Any]] = []
        for event_id, buf in events.items():
            for minute, sums in buf.minutes.items():
                minutes.append(
                    {
                        "event_id": str(event_id),
                        "tenant_id": str(buf.tenant_id),
                        "minute": minute.isoformat(),
                        "viewers": await active_viewers(self.cache, event_id, minute),
                        **sums,
                    }
                )
            for viewer, (first_seen, watched) in buf.viewers.items():
                viewers.append(
                    {
                        "event_id": str(event_id),
                        "tenant_id": str(buf.tenant_id),
                        "viewer": viewer,
                        "first_seen_at": first_seen.isoformat(),
                        "watch_ms": watched,
                    }
                )
        batch = uuid.uuid4().hex
        await self.queue.enqueue(APPLY_ROLLUP_TASK, batch=batch, minutes=minutes, viewers=viewers)
        return batch

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            try:
                await self.flush()
            except Exception:
                log.exception("analytics_flush_failed")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="analytics-flush")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        except Exception:
            log.exception("analytics_final_flush_failed")
