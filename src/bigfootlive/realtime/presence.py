"""Concurrent and unique viewers per event, correct across processes and self-healing; and
the loops that send viewers the counts of presence and of reactions.

Each process writes its own local count into the hash `presence:{event}` under its process id,
with an expiry time inside the value; readers sum the fields that have not expired and drop the
others. A process that dies stops refreshing its field, so its viewers vanish from the total
within 3 heartbeats. Unique viewers: a HyperLogLog per event (an exact set in memory); the
viewers seen within `SEEN_FLUSH_SECONDS` go in one PFADD per event (a connect storm is not one
round trip per socket).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from typing import Protocol

import structlog

from bigfootlive.kit.backends import Cache
from bigfootlive.realtime import protocol as p
from bigfootlive.realtime.connection import OutFrame, Room
from bigfootlive.realtime.protocol import Presence as PresenceMessage

log = structlog.get_logger(__name__)

TTL_BEATS = 3
UNIQUE_TTL_SECONDS = 7 * 24 * 3600
SEEN_FLUSH_SECONDS = 0.05


class Presence:
    def __init__(self, cache: Cache, interval: float) -> None:
        self.cache = cache
        self.interval = interval
        self.process_id = uuid.uuid4().hex
        self._seen: dict[uuid.UUID, set[str]] = {}
        self._flushing: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()  # counts read after the PFADDs in flight land

    @staticmethod
    def _key(event_id: uuid.UUID) -> str:
        return f"presence:{event_id}"

    def seen(self, event_id: uuid.UUID, viewer: str) -> None:
        """Count `viewer` among the event's unique viewers (written within a moment)."""
        self._seen.setdefault(event_id, set()).add(viewer)
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush_later(), name="presence-seen")

    async def _flush_later(self) -> None:
        try:
            await asyncio.sleep(SEEN_FLUSH_SECONDS)
        finally:
            self._flushing = None
        await self.flush_seen()

    async def flush_seen(self) -> None:
        async with self._flush_lock:
            await self._flush_seen()

    async def _flush_seen(self) -> None:
        seen, self._seen = self._seen, {}
        for event_id, viewers in seen.items():
            try:
                await self.cache.pfadd(
                    f"{self._key(event_id)}:unique", *viewers, ttl=UNIQUE_TTL_SECONDS
                )
            except Exception:
                log.warning("presence_seen_failed", exc_info=True)

    async def beat(self, event_id: uuid.UUID, count: int) -> PresenceMessage:
        """Publish this process's count, then read the total."""
        expires = time.time() + self.interval * TTL_BEATS
        await self.cache.hset(
            self._key(event_id),
            self.process_id,
            f"{count}:{expires:.3f}".encode(),
            ttl=self.interval * TTL_BEATS * 2,
        )
        return await self.counts(event_id)

    async def counts(self, event_id: uuid.UUID) -> PresenceMessage:
        await self.flush_seen()
        now = time.time()
        total, stale = 0, []
        for process, raw in (await self.cache.hgetall(self._key(event_id))).items():
            try:
                count, expires = raw.decode().split(":")
                if float(expires) < now:
                    stale.append(process)
                else:
                    total += int(count)
            except ValueError:
                stale.append(process)
        if stale:
            await self.cache.hdel(self._key(event_id), *stale)
        unique = await self.cache.pfcount(f"{self._key(event_id)}:unique")
        return PresenceMessage(viewers=total, unique_viewers=unique)

    async def forget(self, event_id: uuid.UUID) -> None:
        await self.cache.hdel(self._key(event_id), self.process_id)


class LiveRooms(Protocol):
    """What the presence and reactions loops need of the hub."""

    rooms: dict[uuid.UUID, Room]
    cache: Cache
    presence: Presence

    def broadcast_frame(self, room: Room, frame: OutFrame) -> None: ...


async def presence_loop(hub: LiveRooms) -> None:
    while True:
        try:
            for room in list(hub.rooms.values()):
                counts = await hub.presence.beat(room.event_id, room.viewers)
                if room.connections:
                    hub.broadcast_frame(room, OutFrame.of(p.encode(counts)))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("presence_heartbeat_failed")
        await asyncio.sleep(hub.presence.interval)


async def reactions_loop(hub: LiveRooms) -> None:
    """Once a second (aligned to wall-clock seconds): add this process's counts to the
    shared per-second bucket, then deliver the previous second's total to local viewers."""
    while True:
        now = time.time()
        await asyncio.sleep(1.2 - (now % 1.0))
        second = int(time.time())
        try:
            for room in list(hub.rooms.values()):
                if room.reactions:
                    counts, room.reactions = room.reactions, Counter()
                    for kind, n in counts.items():
                        await hub.cache.hincrby(
                            f"reactions:{room.event_id}:{second}", kind, n, ttl=10
                        )
                previous = await hub.cache.hgetall(f"reactions:{room.event_id}:{second - 1}")
                if previous and room.connections:
                    message = p.Reactions(
                        second=second - 1, counts={k: int(v) for k, v in previous.items()}
                    )
                    hub.broadcast_frame(room, OutFrame.of(p.encode(message)))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reactions_flush_failed")
