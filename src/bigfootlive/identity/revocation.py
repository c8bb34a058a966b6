"""The revoked-session set: a session ended here stops every access token it issued at once.

Entries only need to outlive the longest-lived access token, so they expire after that.
"""

from __future__ import annotations

import uuid

from bigfootlive.kit.backends.base import Cache


class RevokedSessions:
    def __init__(self, cache: Cache, *, ttl: float) -> None:
        self.cache = cache
        self.ttl = ttl

    async def revoke(self, session_id: uuid.UUID) -> None:
        await self.cache.set(f"revoked:{session_id}", b"1", ttl=self.ttl)

    async def is_revoked(self, session_id: uuid.UUID) -> bool:
        return await self.cache.get(f"revoked:{session_id}") is not None
