"""The revoked-session set: a session ended here stops every access token it issued at once.

Entries only need to outlive the longest-lived access token, so they expire after that. Each
revocation is also published on `CHANNEL` (a `SessionRevoked`), so whoever holds something open
for that session (the WebSocket gateway) can end it at once instead of at its next check.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from bigfootlive.kit.backends.base import Cache, PubSub

CHANNEL = "sessions:revoked"


class SessionRevoked(BaseModel):
    session_id: uuid.UUID
    user_id: uuid.UUID


class RevokedSessions:
    def __init__(self, cache: Cache, *, ttl: float, pubsub: PubSub | None = None) -> None:
        self.cache = cache
        self.ttl = ttl
        self.pubsub = pubsub

    async def revoke(self, session_id: uuid.UUID, *, user_id: uuid.UUID | None = None) -> None:
        await self.cache.set(f"revoked:{session_id}", b"1", ttl=self.ttl)
        if self.pubsub is not None and user_id is not None:
            message = SessionRevoked(session_id=session_id, user_id=user_id)
            await self.pubsub.publish(CHANNEL, message.model_dump_json().encode())

    async def is_revoked(self, session_id: uuid.UUID) -> bool:
        return await self.cache.get(f"revoked:{session_id}") is not None
