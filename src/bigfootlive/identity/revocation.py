"""The revoked-session set: a session ended here stops every access token it issued at once.

Entries only need to outlive the longest-lived access token, so they expire after that. Each
revocation is also published on `CHANNEL` (a `SessionRevoked`), so whoever holds something open
for that session (the WebSocket gateway) can end it at once instead of at its next check.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from pydantic import BaseModel

from bigfootlive.kit.backends.base import Cache, PubSub

CHANNEL = "sessions:revoked"

# Called after each revocation with the session and its user (the principal cache's
# `identity.principals.PrincipalCache.session_revoked`).
RevocationListener = Callable[[uuid.UUID, uuid.UUID | None], Awaitable[None]]


def revoked_key(session_id: uuid.UUID) -> str:
    return f"revoked:{session_id}"


class SessionRevoked(BaseModel):
    session_id: uuid.UUID
    user_id: uuid.UUID


class RevokedSessions:
    def __init__(self, cache: Cache, *, ttl: float, pubsub: PubSub | None = None) -> None:
        self.cache = cache
        self.ttl = ttl
        self.pubsub = pubsub
        self.listeners: list[RevocationListener] = []

    async def revoke(self, session_id: uuid.UUID, *, user_id: uuid.UUID | None = None) -> None:
        await self.cache.set(revoked_key(session_id), b"1", ttl=self.ttl)
        for listener in self.listeners:
            await listener(session_id, user_id)
        if self.pubsub is not None and user_id is not None:
            message = SessionRevoked(session_id=session_id, user_id=user_id)
            await self.pubsub.publish(CHANNEL, message.model_dump_json().encode())

    async def is_revoked(self, session_id: uuid.UUID) -> bool:
        return await self.cache.get(revoked_key(session_id)) is not None
