"""Beacon ingest: everything summed in memory per (event, minute); each flush (every
ANALYTICS_FLUSH_SECONDS) counts the viewers it saw into the real-time counters in the cache
(Redis when configured; one script per event and minute) and rolls the sums up into the
database with one job.

A flush is one `analytics.tasks.apply_rollup` job with a batch id; the job records the id in
the same transaction as the sums, so a redelivered job never counts twice. A job whose send
failed is sent again as it was, under the same batch id: the broker may have taken it before
the failure (a connection lost before its answer), and the job then counts it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from bigfootlive.analytics.schemas import HeartbeatBeacon, StartBeacon, StopBeacon
from bigfootlive.kit.backends import Cache
from bigfootlive.kit.periodic import start_phase

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


# The event id is a hash tag ({…}): an event's counters and members share one Redis Cluster slot,
# as the add_many_count script needs.
def active_key(event_id: uuid.UUID, minute: dt.datetime) -> str:
    return f"an:{{{event_id}}}:active:{int(minute.timestamp())}"


def uniques_key(event_id: uuid.UUID) -> str:
    return f"an:{{{event_id}}}:uniques"


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
    # For the real-time counters, sent with the flush: who was seen in which minute.
    seen: dict[dt.datetime, set[str]] = field(default_factory=lambda: defaultdict(set))


class BeaconBuffer:
    """Sums beacons and activity in memory and sends them as roll-up jobs on `queue`.

    Started (`start()`, by the API's lifespan) it flushes every `flush_seconds`. Never started
    (a job worker, an event container's process) or stopped, it flushes at once on every add:
    nothing waits in a buffer that nobody flushes. A job that could not be sent is sent again,
    with the same batch id, by the next flush; `stop()` (also in `AppState.close()`) makes the
    last one.
    """

    def __init__(
        self, cache: Cache, flush_seconds: float, queue: JobQueue, *, seen_ttl_seconds: int = 900
    ) -> None:
        self.cache = cache
        self.flush_seconds = flush_seconds
        self.phase: Callable[[float], float] = start_phase  # a test may fix it
        self.seen_ttl_seconds = seen_ttl_seconds  # `Settings.analytics_seen_ttl_seconds`
        self.queue = queue
        self._events: dict[uuid.UUID, _EventBuffer] = {}
        self._unsent: list[dict[str, Any]] = []  # roll-up jobs whose send failed, in order
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
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
        # Everything in memory, with no await (a flush cannot take half of a batch). The
        # real-time counters (one viewer counts once per minute and once per event,
        # fleet-wide) are updated by the flush, in one cache round trip per event and minute.
        # A batch's beacons are mostly of one minute (most have no `ts`: "now"): its row is
        # looked up once per run of beacons of the same minute, not once per beacon.
        buf = self._event(event_id, tenant_id)
        this_minute = minute_of(now)
        minute: dt.datetime | None = None
        row: dict[str, int] = {}
        first_seen = now
        watched = 0
        for beacon in beacons:
            at = now if beacon.ts is None else beacon_time(beacon.ts, now)
            if at < first_seen:
                first_seen = at
            at_minute = this_minute if at is now else minute_of(at)
            if at_minute != minute:
                minute = at_minute
                buf.seen[minute].add(viewer)
                row = buf.minutes[minute]
            if isinstance(beacon, HeartbeatBeacon):
                row["heartbeats"] += 1
                row["watch_ms"] += beacon.watched_ms
                row["rebuffer_ms"] += beacon.rebuffer_ms
                row["rebuffer_events"] += beacon.rebuffer_count
                watched += beacon.watched_ms
                if beacon.bitrate_kbps is not None:
                    row["bitrate_kbps_sum"] += beacon.bitrate_kbps
                    row["bitrate_samples"] += 1
            elif isinstance(beacon, StartBeacon):
                row["views_started"] += 1
                if beacon.startup_ms is not None:
                    row["startup_ms_sum"] += beacon.startup_ms
                    row["startup_samples"] += 1
            else:
                row["views_ended"] += 1
                row["watch_ms"] += beacon.watched_ms
                watched += beacon.watched_ms
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

    @property
    def pending(self) -> bool:
        """Sums buffered, or a roll-up job not sent yet."""
        return bool(self._events or self._unsent)

    def take(self) -> dict[uuid.UUID, _EventBuffer]:
        events, self._events = self._events, {}
        return events

    def _put_back(self, events: dict[uuid.UUID, _EventBuffer]) -> None:
        """Add sums taken for a flush that failed back into the buffer (the viewers seen too:
        counting one again is harmless, the counters count each viewer once)."""
        for event_id, taken in events.items():
            buf = self._event(event_id, taken.tenant_id)
            for minute, viewers in taken.seen.items():
                buf.seen[minute] |= viewers
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
        """Send what was buffered as one roll-up job; returns its batch id. The jobs of earlier
        flushes whose send failed go first, unchanged; if a send fails, its job waits for the
        next flush (and the error is raised)."""
        async with self._lock:
            await self._send_unsent()
            events = self.take()
            if not events:
                return None
            try:
                job = await self._job(events)
            except BaseException:  # nothing sent: the sums go back into the buffer
                self._put_back(events)
                raise
            self._unsent.append(job)
            await self._send_unsent()
            return str(job["batch"])

    async def _send_unsent(self) -> None:
        while self._unsent:
            await self.queue.enqueue(APPLY_ROLLUP_TASK, **self._unsent[0])
            self._unsent.pop(0)

    async def _job(self, events: dict[uuid.UUID, _EventBuffer]) -> dict[str, Any]:
        minutes: list[dict[str, Any]] = []
        viewers: list[dict[str, Any]] = []
        for event_id, buf in events.items():
            active = await self._count_viewers(event_id, buf)
            event, tenant = str(event_id), str(buf.tenant_id)  # once, not once per row
            for minute, sums in buf.minutes.items():
                viewers_then = active.get(minute)
                if viewers_then is None:
                    viewers_then = await active_viewers(self.cache, event_id, minute)
                minutes.append(
                    {
                        "event_id": event,
                        "tenant_id": tenant,
                        "minute": minute.isoformat(),
                        "viewers": viewers_then,
                        **sums,
                    }
                )
            for viewer, (first_seen, watched) in buf.viewers.items():
                viewers.append(
                    {
                        "event_id": event,
                        "tenant_id": tenant,
                        "viewer": viewer,
                        "first_seen_at": first_seen.isoformat(),
                        "watch_ms": watched,
                    }
                )
        return {"batch": uuid.uuid4().hex, "minutes": minutes, "viewers": viewers}

    async def _count_viewers(
        self, event_id: uuid.UUID, buf: _EventBuffer
    ) -> dict[dt.datetime, int]:
        """Count the viewers this flush saw into the fleet-wide real-time counters (each one
        once per minute and once per event); returns the active viewers of each minute."""
        active: dict[dt.datetime, int] = {}
        for minute, viewers in buf.seen.items():
            stamp = int(minute.timestamp())
            active[minute] = await self.cache.add_many_count(
                [f"an:{{{event_id}}}:seen:{viewer}:{stamp}" for viewer in sorted(viewers)],
                active_key(event_id, minute),
                ttl=self.seen_ttl_seconds,
                counter_ttl=3 * 3600,
            )
        everyone = sorted(set().union(*buf.seen.values())) if buf.seen else []
        if everyone:
            await self.cache.add_many_count(
                [f"an:{{{event_id}}}:viewer:{viewer}" for viewer in everyone],
                uniques_key(event_id),
                ttl=3 * 24 * 3600,
                counter_ttl=3 * 24 * 3600,
            )
        buf.seen.clear()  # counted: a retry of this flush need not count them again
        return active

    async def _run(self, stopping: asyncio.Event) -> None:
        # The first flush one interval and a random phase after the start: the processes of
        # a fleet started together do not flush into Redis and the queue in lockstep.
        wait = self.flush_seconds + self.phase(self.flush_seconds)
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), wait)
            wait = self.flush_seconds
            try:
                await self.flush()
            except Exception:
                log.exception("analytics_flush_failed")

    def start(self) -> None:
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._run(self._stopping), name="analytics-flush")

    async def stop(self) -> None:
        """Let a flush under way finish (cancelled after its job was sent, it would put the
        sums back and send them twice), then send what is left."""
        if self._task is not None:
            self._stopping.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        except Exception:
            log.exception("analytics_final_flush_failed")
