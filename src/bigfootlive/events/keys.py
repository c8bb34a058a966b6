"""Stream keys and playback ids: minting, storing and rotating keys, and the lookups the media
server's callbacks make (by stream key, playback id or event id; cache first). Knows nothing
of HTTP."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.config import Settings
from bigfootlive.db import after_commit, utcnow
from bigfootlive.events import repository as repo
from bigfootlive.events.access import get_managed_event
from bigfootlive.events.cache import EventRef
from bigfootlive.events.lifecycle import event_cache, illegal
from bigfootlive.events.ports import EventsState
from bigfootlive.events.schemas import EventStatus
from bigfootlive.kit.backends import Cache
from bigfootlive.kit.request import RequestMeta
from bigfootlive.kit.singleflight import SingleFlight
from bigfootlive.mfa.policy import ensure_recent_mfa
from bigfootlive.models import Event


@functools.lru_cache(maxsize=4)
def _lookup_macs(data_keys: tuple[bytes, ...]) -> tuple[hmac.HMAC, ...]:
    """An HMAC-SHA256 keyed for the lookups under each data key, fed nothing yet: a copy of it
    hashes a stream key (`kit.crypto.keyed_hash`'s HMAC) without deriving the lookup key and
    setting up its HMAC again, ~3.4 -> ~1.2 us a key; a publish hashes its key three times."""
    return tuple(
        hmac.new(hashlib.sha256(b"bfl-stream-key-lookup:" + k).digest(), digestmod="sha256")
        for k in data_keys
    )


def stream_key_hashes(settings: Settings, stream_key: str) -> list[str]:
    """HMACs of a key under every data key still configured (newest first), for lookups that
    survive a rotation of ENCRYPTION_KEYS."""
    value = stream_key.encode()
    hashes = []
    for keyed in _lookup_macs(tuple(settings.data_keys)):
        mac = keyed.copy()
        mac.update(value)
        hashes.append(mac.hexdigest())
    return hashes


def new_stream_key() -> str:
    return "sk_" + secrets.token_urlsafe(24)


def new_playback_id() -> str:
    return "pb" + secrets.token_hex(10)


def _key_context(event_id: uuid.UUID) -> str:
    return f"event-stream-key:{event_id}"


def set_stream_key(state: EventsState, event: Event, stream_key: str) -> None:
    event.stream_key_ciphertext = state.secrets.encrypt(stream_key, context=_key_context(event.id))
    event.stream_key_hash = stream_key_hashes(state.settings, stream_key)[0]


def stream_key_of(state: EventsState, event: Event) -> str:
    """The stream key in the clear: only for responses to the event's managers."""
    return state.secrets.decrypt(event.stream_key_ciphertext, context=_key_context(event.id))


# --- rotation -----------------------------------------------------------------------------------


async def rotate_stream_key(
    state: EventsState,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    event_id: uuid.UUID,
) -> tuple[Event, str]:
    """A new key; the old one stops working at once for every new publish. A connected
    publisher stays connected (stop the event to cut it off): the media server names it by
    the key it published with, so that key's hash is kept (`rotated_key_hash`) and its
    `publish_done` and `on_update` still reach the event, for that publisher only
    (`streaming.service`); its reconnects need the new key."""
    event = await get_managed_event(session, subject, event_id)  # 404/403 before any step-up
    await ensure_recent_mfa(state, session, meta, subject)
    if EventStatus(event.status).is_finished:
        raise illegal("rotate_key", EventStatus(event.status))
    old_hash = event.stream_key_hash
    if EventStatus(event.status) == EventStatus.LIVE and event.publisher_id:
        # The running publisher's key: the first rotation's old key, kept over later ones.
        event.rotated_key_hash = event.rotated_key_hash or old_hash
    else:
        event.rotated_key_hash = None  # nobody is publishing with an older key
    stream_key = new_stream_key()
    set_stream_key(state, event, stream_key)
    event.updated_at = utcnow()
    await session.flush()
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.EVENT_STREAM_KEY_ROTATE,
        tenant_id=event.tenant_id,
        target_type="event",
        target_id=event.id,
    )
    cache = event_cache(state)

    async def forget_old_key() -> None:
        await cache.remember_unknown_key(old_hash)
        await cache.remember(event)

    after_commit(session, forget_old_key)
    return event, stream_key


# --- lookups for the media server's callbacks --------------------------------------------------


async def find_by_stream_key(
    state: EventsState, session: AsyncSession, stream_key: str, *, via: Cache | None = None
) -> EventRef | None:
    """The event a stream key belongs to: from the cache, else one query (then cached).
    `via`: a view of the cache that may already hold the entry (see `lookup_entries`)."""
    cache = event_cache(state, via)
    hashes = stream_key_hashes(state.settings, stream_key)
    cached = await cache.by_key(hashes[0])
    if isinstance(cached, EventRef):
        return cached
    if cached is False:
        return None
    event = await repo.find_by_key_hashes(session, hashes)
    if event is None:
        await cache.remember_unknown_key(hashes[0])
        return None
    return await cache.fill(event)


async def find_by_rotated_key(
    state: EventsState, session: AsyncSession, stream_key: str
) -> EventRef | None:
    """The live event whose running publisher published with this key before a rotation
    (one query, not cached: only that publisher's `publish_done` / `on_update` ask). The
    caller accepts it only for that publisher (its client id is `publisher_id`)."""
    event = await repo.find_by_rotated_key_hashes(
        session, stream_key_hashes(state.settings, stream_key)
    )
    return None if event is None else EventRef.of(event)


async def find_by_playback_id(
    state: EventsState, playback_id: str, *, via: Cache | None = None
) -> EventRef | None:
    """The event a playback id names: from the cache, else one query per process however many
    callbacks miss at once (every viewer of a popular event asks when its entry expires)."""
    cached = await event_cache(state, via).by_playback_id(playback_id)
    if isinstance(cached, EventRef):
        return cached
    if cached is False:
        return None
    loads = SingleFlight[EventRef | None].kept_in(state.db.batches, "events.playback_id_load")
    return await loads(playback_id, lambda: _load_playback(state, playback_id))


async def _load_playback(state: EventsState, playback_id: str) -> EventRef | None:
    """In a session of its own: the load is shared by callers that each have theirs."""
    async with state.db.sessionmaker() as session:
        event = await repo.find_by_playback_id(session, playback_id)
    cache = event_cache(state)
    if event is None:
        await cache.remember_unknown_playback(playback_id)
        return None
    return await cache.fill(event)


async def find_ref(
    state: EventsState, session: AsyncSession, event_id: uuid.UUID, *, via: Cache | None = None
) -> EventRef | None:
    """The cache snapshot of an event (unscoped: callers check the tenant)."""
    cache = event_cache(state, via)
    ref = await cache.ref(event_id)
    if ref is not None:
        return ref
    event = await repo.get_for_visibility_check(session, event_id)
    return None if event is None else await cache.fill(event)
