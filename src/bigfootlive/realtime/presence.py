"""Concurrent and unique viewers per event, correct across processes and self-healing.

Each process writes its own local count into the hash `presence:{event}` under its process id,
with an expiry time inside the value; readers sum the fields that have not expired and drop the
others. A process that dies stops refreshing its field, so its viewers vanish from the total
within 3 heartbeats. Unique viewers: a HyperLogLog per event (an exact set in memory).
"""

from __future__ import annotations

import time
import uuid

from bigfootlive.kit.backends import Cache
from bigfootlive.realtime.protocol import Presence as PresenceMessage

TTL_BEATS = 3
UNIQUE_TTL_SECONDS = 7 * 24 * 3600


class Presence:
    def __init__(self, cache: Cache, interval: float) -> None:
        self.cache = cache
        self.interval = interval
        self.process_id = uuid.uuid4().hex

    @staticmethod
    def _key(event_id: uuid.UUID) -> str:
        return f"presence:{event_id}"

    async def seen(self, event_id: uuid.UUID, viewer: str) -> None:
        await self.cache.pfadd(f"{self._key(event_id)}:unique", viewer, ttl=UNIQUE_TTL_SECONDS)

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
