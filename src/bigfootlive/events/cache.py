"""What the media-server callback path needs to decide, kept in the cache (Redis or memory).

`key:<hmac>` and `pb:<playback id>` map to an event id (they only change on key rotation);
`ref:<event id>` holds an `EventRef` snapshot that is rewritten after every committed change.
Entries expire after STREAM_LOOKUP_CACHE_SECONDS, which bounds how stale a snapshot can be if
a process dies between its commit and its cache write. Decisions that change state are still
made by a conditional UPDATE in the database; the cache answers the read-only questions.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from bigfootlive.events.schemas import EventStatus, Visibility
from bigfootlive.kit.backends import Cache
from bigfootlive.models import Event

_UNKNOWN = b"-"


@dataclass(frozen=True, slots=True)
class EventRef:
    id: uuid.UUID
    tenant_id: uuid.UUID
    owner_id: uuid.UUID
    playback_id: str
    visibility: Visibility
    status: EventStatus
    version: int
    publisher_id: str | None

    @classmethod
    def of(cls, event: Event) -> EventRef:
        return cls(
            id=event.id,
            tenant_id=event.tenant_id,
            owner_id=event.owner_id,
            playback_id=event.playback_id,
            visibility=Visibility(event.visibility),
            status=EventStatus(event.status),
            version=event.version,
            publisher_id=event.publisher_id,
        )

    def dumps(self) -> bytes:
        return json.dumps(
            [
                str(self.id),
                str(self.tenant_id),
                str(self.owner_id),
                self.playback_id,
                self.visibility.value,
                self.status.value,
                self.version,
                self.publisher_id,
            ]
        ).encode()

    @classmethod
    def loads(cls, raw: bytes) -> EventRef:
        id_, tenant, owner, pb, vis, status, version, publisher = json.loads(raw)
        return cls(
            id=uuid.UUID(id_),
            tenant_id=uuid.UUID(tenant),
            owner_id=uuid.UUID(owner),
            playback_id=pb,
            visibility=Visibility(vis),
            status=EventStatus(status),
            version=int(version),
            publisher_id=publisher,
        )


class EventCache:
    def __init__(self, cache: Cache, ttl: float) -> None:
        self.cache = cache
        self.ttl = ttl

    async def event_id_for_key(self, key_hash: str) -> uuid.UUID | bool | None:
        """The event id, None on a miss, False when the key is known not to exist."""
        return _decode_id(await self.cache.get(f"events:key:{key_hash}"))

    async def event_id_for_playback(self, playback_id: str) -> uuid.UUID | bool | None:
        return _decode_id(await self.cache.get(f"events:pb:{playback_id}"))

    async def ref(self, event_id: uuid.UUID) -> EventRef | None:
        raw = await self.cache.get(f"events:ref:{event_id}")
        if raw is None:
            return None
        try:
            return EventRef.loads(raw)
        except (ValueError, TypeError, KeyError):
            return None

    async def remember(self, event: Event, key_hash: str | None = None) -> EventRef:
        ref = EventRef.of(event)
        await self.cache.set(f"events:ref:{event.id}", ref.dumps(), ttl=self.ttl)
        await self.cache.set(f"events:pb:{event.playback_id}", str(event.id).encode(), ttl=self.ttl)
        if key_hash is not None:
            await self.cache.set(f"events:key:{key_hash}", str(event.id).encode(), ttl=self.ttl)
        return ref

    async def remember_unknown_key(self, key_hash: str) -> None:
        await self.cache.set(f"events:key:{key_hash}", _UNKNOWN, ttl=min(self.ttl, 10.0))

    async def remember_unknown_playback(self, playback_id: str) -> None:
        await self.cache.set(f"events:pb:{playback_id}", _UNKNOWN, ttl=min(self.ttl, 10.0))

    async def forget_key(self, key_hash: str) -> None:
        await self.cache.delete(f"events:key:{key_hash}")


def _decode_id(raw: bytes | None) -> uuid.UUID | bool | None:
    if raw is None:
        return None
    if raw == _UNKNOWN:
        return False
    try:
        return uuid.UUID(raw.decode())
    except ValueError:
        return None
