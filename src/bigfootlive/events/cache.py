"""What the media-server callback path needs to decide, kept in the cache (Redis or memory).

The same `EventRef` snapshot is kept under `key:<hmac>`, `pb:<playback id>` and
`ref:<event id>`, so one GET answers a callback; all three are rewritten after every committed
change.
Entries expire after STREAM_LOOKUP_CACHE_SECONDS, which bounds how stale a snapshot can be if
a process dies between its commit and its cache write. Decisions that change state are still
made by a conditional UPDATE in the database; the cache answers the read-only questions.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from bigfootlive.events.schemas import EventStatus, Visibility
from bigfootlive.kit import jsonparse
from bigfootlive.kit.backends import Cache, PubSub, set_then_publish
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
        id_, tenant, owner, pb, vis, status, version, publisher = jsonparse.loads(raw)
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

    async def by_key(self, key_hash: str) -> EventRef | bool | None:
        """The snapshot, None on a miss, False when the key is known not to exist."""
        return _decode(await self.cache.get(by_key_entry(key_hash)))

    async def by_playback_id(self, playback_id: str) -> EventRef | bool | None:
        return _decode(await self.cache.get(by_playback_entry(playback_id)))

    async def ref(self, event_id: uuid.UUID) -> EventRef | None:
        found = _decode(await self.cache.get(by_id_entry(event_id)))
        return found if isinstance(found, EventRef) else None

    async def remember(
        self,
        event: Event,
        *,
        pubsub: PubSub | None = None,
        messages: Sequence[tuple[str, bytes]] = (),
    ) -> EventRef:
        """Write the snapshot under all three lookups (one GET answers a callback), in one
        round trip; then publish `messages` on `pubsub` (the news of the change), in that same
        round trip when both are the same Redis."""
        ref = EventRef.of(event)
        raw = ref.dumps()
        entries = (
            by_id_entry(event.id),
            by_playback_entry(event.playback_id),
            by_key_entry(event.stream_key_hash),
        )
        if pubsub is None:
            await self.cache.set_many(dict.fromkeys(entries, raw), ttl=self.ttl)
        else:
            await set_then_publish(
                self.cache, pubsub, entries, raw, ttl=self.ttl, messages=messages
            )
        return ref

    async def fill(self, event: Event) -> EventRef:
        """A loader's write: the snapshot of a row it read, under each lookup that holds
        nothing. A writer's `remember` after its commit may land first (the loader read the
        row before that commit); its newer snapshot then stays instead of being replaced by
        the older one until the entries expire."""
        ref = EventRef.of(event)
        entries = (
            by_id_entry(event.id),
            by_playback_entry(event.playback_id),
            by_key_entry(event.stream_key_hash),
        )
        await self.cache.add_many(dict.fromkeys(entries, ref.dumps()), ttl=self.ttl)
        return ref

    async def remember_unknown_key(self, key_hash: str) -> None:
        await self.cache.set(by_key_entry(key_hash), _UNKNOWN, ttl=min(self.ttl, 10.0))

    async def remember_unknown_playback(self, playback_id: str) -> None:
        await self.cache.set(by_playback_entry(playback_id), _UNKNOWN, ttl=min(self.ttl, 10.0))


# The cache entries of the three lookups (for callers that fetch several entries at once).
def by_key_entry(key_hash: str) -> str:
    return f"events:key:{key_hash}"


def by_playback_entry(playback_id: str) -> str:
    return f"events:pb:{playback_id}"


def by_id_entry(event_id: uuid.UUID) -> str:
    return f"events:ref:{event_id}"


def _decode(raw: bytes | None) -> EventRef | bool | None:
    if raw is None:
        return None
    if raw == _UNKNOWN:
        return False
    try:
        return EventRef.loads(raw)
    except (ValueError, TypeError, KeyError):
        return None
