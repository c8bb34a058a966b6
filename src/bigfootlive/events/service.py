"""Live events: the rules. Knows nothing of HTTP.

Lifecycle::

    scheduled --start--> ready --publish--> live --unpublish--> reconnecting --publish--> live
        |                  |                  |                      |
        +--cancel--+-------+                  +--stop--> ended <-----+--stop / window expired
                   v                                       ^
               cancelled          ready --stop-------------+

Every change is one conditional UPDATE (`WHERE status = <expected>`), so two concurrent requests
cannot both move the same event: the loser re-reads and gets a 409 for the state it finds. After
the commit the change is published on `event:{event_id}:state` and written to the cache.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.roles import Permission, Role
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.config import Settings
from bigfootlive.db import after_commit, utcnow
from bigfootlive.errors import Conflict, Forbidden, NotFound
from bigfootlive.events import repository as repo
from bigfootlive.events.cache import EventCache, EventRef
from bigfootlive.events.hooks import EVENT_STARTING, EVENT_TRANSITIONED, Starting, Transition
from bigfootlive.events.playback import PlaybackClaims
from bigfootlive.events.ports import EventsState
from bigfootlive.events.schemas import (
    EventCreate,
    EventStatus,
    EventUpdate,
    StateChange,
    Visibility,
)
from bigfootlive.events.wire import state_channel
from bigfootlive.kit.crypto import keyed_hash
from bigfootlive.kit.request import RequestMeta
from bigfootlive.mfa.policy import ensure_recent_mfa
from bigfootlive.models import Event
from bigfootlive.notifications import service as notifications
from bigfootlive.webhooks import service as webhooks

log = structlog.get_logger(__name__)

S = EventStatus


# --- errors: every illegal transition is a 409 with its own code -------------------------------


class EventNotFound(NotFound):
    code = "event_not_found"
    message = "No such event"


class NotEventManager(Forbidden):
    code = "not_event_manager"
    message = "Only the event's owner or a tenant admin can do this"


class EventStateConflict(Conflict):
    code = "invalid_event_state"
    message = "The event is not in a state that allows this"


class EventNotStarted(EventStateConflict):
    code = "event_not_started"
    message = "The event has not been started"


class EventAlreadyStarted(EventStateConflict):
    code = "event_already_started"
    message = "The event has already been started"


class EventAlreadyLive(EventStateConflict):
    code = "event_already_live"
    message = "The event is already live"


class EventIsLive(EventStateConflict):
    code = "event_is_live"
    message = "The event is on air; stop it first"


class EventNotLive(EventStateConflict):
    code = "event_not_live"
    message = "The event is not live"


class EventFinished(EventStateConflict):
    code = "event_finished"
    message = "The event has ended or was cancelled"


class PublisherAlreadyConnected(EventStateConflict):
    code = "publisher_already_connected"
    message = "Another publisher is already connected to this event"


class VersionMismatch(Conflict):
    code = "version_mismatch"
    message = "The event was changed by someone else; reload it and try again"


# action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[EventStatus], EventStatus]] = {
    "start": (frozenset({S.SCHEDULED}), S.READY),
    "publish": (frozenset({S.READY, S.RECONNECTING}), S.LIVE),
    "unpublish": (frozenset({S.LIVE}), S.RECONNECTING),
    "stop": (frozenset({S.READY, S.LIVE, S.RECONNECTING}), S.ENDED),
    "expire": (frozenset({S.RECONNECTING}), S.ENDED),
    "cancel": (frozenset({S.SCHEDULED, S.READY}), S.CANCELLED),
}


def illegal(action: str, status: EventStatus) -> EventStateConflict:
    """The 409 for `action` attempted while the event is in `status`."""
    details: dict[str, Any] = {"status": status.value, "action": action}
    if status.is_finished:
        return EventFinished(**details)
    if action == "start":
        return (EventAlreadyLive if status.is_on_air else EventAlreadyStarted)(**details)
    if action == "cancel" and status.is_on_air:
        return EventIsLive(**details)
    if action == "publish":
        if status == S.LIVE:
            return PublisherAlreadyConnected(**details)
        return EventNotStarted(**details)
    if action in ("stop",) and status == S.SCHEDULED:
        return EventNotStarted(**details)
    if action in ("unpublish", "expire"):
        return EventNotLive(**details)
    return EventStateConflict(**details)


def target_of(action: str, status: EventStatus) -> EventStatus:
    sources, target = TRANSITIONS[action]
    if status not in sources:
        raise illegal(action, status)
    return target


# --- stream keys -------------------------------------------------------------------------------


def _lookup_keys(settings: Settings) -> list[bytes]:
    return [hashlib.sha256(b"bfl-stream-key-lookup:" + k).digest() for k in settings.data_keys]


def stream_key_hashes(settings: Settings, stream_key: str) -> list[str]:
    """HMACs of a key under every data key still configured (newest first), for lookups that
    survive a rotation of ENCRYPTION_KEYS."""
    return [keyed_hash(k, stream_key) for k in _lookup_keys(settings)]


def new_stream_key() -> str:
    return "sk_" + secrets.token_urlsafe(24)


def new_playback_id() -> str:
    return "pb" + secrets.token_hex(10)


def _key_context(event_id: uuid.UUID) -> str:
    return f"event-stream-key:{event_id}"


def _set_stream_key(state: EventsState, event: Event, stream_key: str) -> None:
    event.stream_key_ciphertext = state.secrets.encrypt(stream_key, context=_key_context(event.id))
    event.stream_key_hash = stream_key_hashes(state.settings, stream_key)[0]


def stream_key_of(state: EventsState, event: Event) -> str:
    """The stream key in the clear: only for responses to the event's managers."""
    return state.secrets.decrypt(event.stream_key_ciphertext, context=_key_context(event.id))


# --- who may see and manage --------------------------------------------------------------------


def can_view(
    viewer: AuthSubject | None, event: Event | EventRef, playback: PlaybackClaims | None = None
) -> bool:
    """public: anyone, anonymous included. tenant: members of the event's tenant. private: the
    owner, the tenant's moderators and admins. Any: a valid playback token for this event."""
    visibility = Visibility(event.visibility)
    if visibility == Visibility.PUBLIC:
        return True
    if playback is not None and playback.event_id == event.id:
        return True
    if viewer is None:
        return False
    if viewer.is_platform_admin:
        return True
    if viewer.tenant_id != event.tenant_id:
        return False
    if visibility == Visibility.TENANT:
        return True
    return viewer.user_id == event.owner_id or viewer.role >= Role.MODERATOR


def can_manage(subject: AuthSubject, event: Event | EventRef) -> bool:
    """The owner (while still allowed to stream) and the tenant's admins."""
    if subject.tenant_id != event.tenant_id:
        return False
    if subject.can(Permission.EVENTS_MANAGE_ANY):
        return True
    return subject.user_id == event.owner_id and subject.can(Permission.EVENTS_CREATE)


async def get_event(session: AsyncSession, tenant_id: uuid.UUID, event_id: uuid.UUID) -> Event:
    event = await repo.get(session, tenant_id, event_id)
    if event is None:
        raise EventNotFound()
    return event


async def get_viewable_event(
    session: AsyncSession,
    viewer: AuthSubject | None,
    event_id: uuid.UUID,
    *,
    playback: PlaybackClaims | None = None,
) -> Event:
    """The event if `viewer` (None = anonymous) may watch it, else 404 (existence not leaked).
    `playback` is an already verified playback token (`state.playback_tokens.verify`)."""
    event = await repo.get_for_visibility_check(session, event_id)
    if event is None or not can_view(viewer, event, playback):
        raise EventNotFound()
    return event


async def visibility_of(session: AsyncSession, event_id: uuid.UUID) -> Visibility | None:
    """Whether the event exists and how visible it is, for refusals that must tell "sign in"
    apart from "no such event" (the WebSocket gateway). Nothing else about it is returned."""
    event = await repo.get_for_visibility_check(session, event_id)
    return None if event is None else Visibility(event.visibility)


async def get_managed_event(
    session: AsyncSession, subject: AuthSubject, event_id: uuid.UUID
) -> Event:
    """404 outside the subject's tenant or when it may not even see the event; 403 when it may
    see but not manage it."""
    event = await get_event(session, subject.tenant_id, event_id)
    if not can_manage(subject, event):
        if not can_view(subject, event):
            raise EventNotFound()
        raise NotEventManager()
    return event


# --- CRUD ----------------------------------------------------------------------------------------


async def create_event(
    state: EventsState,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    body: EventCreate,
) -> tuple[Event, str]:
    """A new scheduled event; returns it with its stream key (shown once here, then on demand
    to its managers)."""
    event = Event(
        id=uuid.uuid4(),
        tenant_id=subject.tenant_id,
        owner_id=subject.user_id,
        title=body.title,
        description=body.description,
        visibility=body.visibility.value,
        scheduled_start=body.scheduled_start,
        recording=body.recording,
        latency_mode=body.latency_mode.value,
        status=S.SCHEDULED.value,
        version=1,
        playback_id=new_playback_id(),
    )
    stream_key = new_stream_key()
    _set_stream_key(state, event, stream_key)
    session.add(event)
    await session.flush()
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.EVENT_CREATE,
        tenant_id=event.tenant_id,
        target_type="event",
        target_id=event.id,
        details={"visibility": event.visibility},
    )
    return event, stream_key


async def list_events(
    session: AsyncSession,
    viewer: AuthSubject | None,
    *,
    statuses: Sequence[EventStatus],
    owner_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
) -> Sequence[Event]:
    """Events the viewer may see, newest first: its tenant's (respecting visibility) when
    signed in, public events of every tenant when anonymous. `limit + 1` rows (see page_of)."""
    stmt = repo.page_query(
        tenant_id=None if viewer is None else viewer.tenant_id,
        statuses=statuses,
        owner_id=owner_id,
        viewer_id=None if viewer is None else viewer.user_id,
        sees_all_in_tenant=viewer is not None
        and (viewer.is_platform_admin or viewer.role >= Role.MODERATOR),
    )
    return await repo.page(session, stmt, cursor=cursor, limit=limit)


async def update_event(
    state: EventsState,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    event_id: uuid.UUID,
    patch: EventUpdate,
) -> Event:
    event = await get_managed_event(session, subject, event_id)
    if EventStatus(event.status).is_finished:
        raise illegal("update", EventStatus(event.status))
    if patch.version is not None and patch.version != event.version:
        raise VersionMismatch(current_version=event.version)
    changes = patch.model_dump(exclude_unset=True, exclude={"version"})
    changes = {k: v for k, v in changes.items() if v is not None or k == "scheduled_start"}
    if not changes:
        return event
    for field, value in changes.items():
        setattr(event, field, value.value if hasattr(value, "value") else value)
    event.version += 1
    event.updated_at = utcnow()
    await session.flush()
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.EVENT_UPDATE,
        tenant_id=event.tenant_id,
        target_type="event",
        target_id=event.id,
        details={"fields": sorted(changes)},
    )
    _remember_after_commit(state, session, event)
    return event


async def rotate_stream_key(
    state: EventsState,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    event_id: uuid.UUID,
) -> tuple[Event, str]:
    """A new key; the old one stops working at once. A connected publisher stays connected
    (stop the event to cut it off); its reconnects need the new key."""
    event = await get_managed_event(session, subject, event_id)  # 404/403 before any step-up
    await ensure_recent_mfa(state, session, meta, subject)
    if EventStatus(event.status).is_finished:
        raise illegal("rotate_key", EventStatus(event.status))
    old_hash = event.stream_key_hash
    stream_key = new_stream_key()
    _set_stream_key(state, event, stream_key)
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


# --- lifecycle -----------------------------------------------------------------------------------


async def start_event(
    state: EventsState,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    event_id: uuid.UUID,
) -> Event:
    """Arm the event: ingest is accepted from now on."""
    event = await get_managed_event(session, subject, event_id)
    if event.status == S.SCHEDULED.value:
        await state.hooks.emit(EVENT_STARTING, Starting(state, session, event))
    return await _apply(state, session, event, "start", meta=meta, actor=subject)


async def stop_event(
    state: EventsState,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    event_id: uuid.UUID,
) -> Event:
    """End the event; the media server drops the publisher on its next callback or kick."""
    event = await get_managed_event(session, subject, event_id)
    return await _apply(state, session, event, "stop", meta=meta, actor=subject)


async def cancel_event(
    state: EventsState,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    event_id: uuid.UUID,
) -> Event:
    """Cancel an event that has not gone on air (the row is kept for history)."""
    event = await get_managed_event(session, subject, event_id)
    return await _apply(state, session, event, "cancel", meta=meta, actor=subject)


async def publisher_connected(
    state: EventsState, session: AsyncSession, event: Event | EventRef, publisher_id: str
) -> Event | EventRef:
    """A media server reports a publisher on the event. The same publisher again is a no-op
    (callbacks are retried); a different one while live is refused. One UPDATE when `event`
    is a fresh cache snapshot."""
    if EventStatus(event.status) == S.LIVE and event.publisher_id == publisher_id:
        return event
    return await _apply(state, session, event, "publish", publisher_id=publisher_id)


async def publisher_disconnected(
    state: EventsState, session: AsyncSession, event: Event | EventRef, publisher_id: str | None
) -> Event | None:
    """The publisher went away: wait for it in `reconnecting`. Returns None (and changes
    nothing) when that publisher is not the connected one: a repeat, a late callback, or a
    `done` that overtook its `publish`. `publisher_id` None matches any publisher."""
    moved = await repo.transition(
        session,
        tenant_id=event.tenant_id,
        event_id=event.id,
        expected=S.LIVE,
        to=S.RECONNECTING,
        values=_values_for("unpublish", publisher_id),
        publisher_id=publisher_id,
    )
    if moved is not None:
        _announce_after_commit(state, session, moved, previous=S.LIVE)
    return moved


async def find_by_stream_key(
    state: EventsState, session: AsyncSession, stream_key: str
) -> EventRef | None:
    """The event a stream key belongs to: from the cache, else one query (then cached)."""
    cache = event_cache(state)
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
    return await cache.remember(event)


async def find_by_playback_id(
    state: EventsState, session: AsyncSession, playback_id: str
) -> EventRef | None:
    cache = event_cache(state)
    cached = await cache.by_playback_id(playback_id)
    if isinstance(cached, EventRef):
        return cached
    if cached is False:
        return None
    event = await repo.find_by_playback_id(session, playback_id)
    if event is None:
        await cache.remember_unknown_playback(playback_id)
        return None
    return await cache.remember(event)


async def find_ref(
    state: EventsState, session: AsyncSession, event_id: uuid.UUID
) -> EventRef | None:
    """The cache snapshot of an event (unscoped: callers check the tenant)."""
    cache = event_cache(state)
    ref = await cache.ref(event_id)
    if ref is not None:
        return ref
    event = await repo.get_for_visibility_check(session, event_id)
    return None if event is None else await cache.remember(event)


async def end_expired_reconnects(state: EventsState) -> list[Event]:
    """End events whose reconnect window has passed (run periodically by every process)."""
    now = utcnow()
    cutoff = now - dt.timedelta(seconds=state.settings.reconnect_window_seconds)
    async with state.db.transaction() as session:
        ended = list(await repo.end_expired_reconnects(session, cutoff, now))
        for event in ended:
            _announce_after_commit(state, session, event, previous=S.RECONNECTING)
            await _notify_transition(state, session, event, previous=S.RECONNECTING)
    return ended


async def _apply(
    state: EventsState,
    session: AsyncSession,
    event: Event | EventRef,
    action: str,
    *,
    meta: RequestMeta | None = None,
    actor: AuthSubject | None = None,
    publisher_id: str | None = None,
) -> Event:
    """Run `action` against the event's current status, retrying on a lost race only while
    the action is still legal for the status found."""
    known = EventStatus(event.status)
    # A cache snapshot may lag a commit by moments: never refuse on its word alone.
    confirmed = isinstance(event, Event)
    for _ in range(3):
        try:
            target = target_of(action, known)
        except EventStateConflict:
            if confirmed:
                raise
            fresh = await repo.get(session, event.tenant_id, event.id)
            if fresh is None:
                raise EventNotFound() from None
            event, known, confirmed = fresh, EventStatus(fresh.status), True
            if action == "publish" and known == S.LIVE and event.publisher_id == publisher_id:
                return event
            target = target_of(action, known)
        values = _values_for(action, publisher_id)
        guard = publisher_id if action == "unpublish" else None
        moved = await repo.transition(
            session,
            tenant_id=event.tenant_id,
            event_id=event.id,
            expected=known,
            to=target,
            values=values,
            publisher_id=guard,
        )
        if moved is not None:
            if actor is not None:
                await AuditLog(session, meta, actor.user_id).record(
                    AuditAction(f"event.{action}"),
                    tenant_id=moved.tenant_id,
                    target_type="event",
                    target_id=moved.id,
                    details={"from": known.value, "to": target.value},
                )
            _announce_after_commit(state, session, moved, previous=known)
            await _notify_transition(state, session, moved, previous=known)
            return moved
        fresh = await repo.get(session, event.tenant_id, event.id)
        if fresh is None:
            raise EventNotFound()
        await session.refresh(fresh)
        event = fresh
        if action == "publish" and event.status == S.LIVE.value:
            if event.publisher_id == publisher_id:
                return event
            raise PublisherAlreadyConnected(status=event.status, action=action)
        known = EventStatus(event.status)
        if action == "unpublish" and known == S.LIVE and event.publisher_id != publisher_id:
            raise EventStateConflict(status=known.value, action=action)
    raise Conflict("The event is changing too fast; try again", code="concurrent_update")


def _values_for(action: str, publisher_id: str | None) -> dict[str, Any]:
    now = utcnow()
    if action == "start":
        return {"armed_at": now}
    if action == "publish":
        return {
            "publisher_id": publisher_id,
            "went_live_at": func.coalesce(Event.went_live_at, now),
            "disconnected_at": None,
        }
    if action == "unpublish":
        return {"publisher_id": None, "disconnected_at": now}
    if action in ("stop", "expire"):
        reason = "stopped" if action == "stop" else "publisher_gone"
        return {"publisher_id": None, "ended_at": now, "ended_reason": reason}
    if action == "cancel":
        return {"ended_at": now, "ended_reason": "cancelled"}
    raise ValueError(action)


# --- after commit: cache and pub/sub -------------------------------------------------------------


def event_cache(state: EventsState) -> EventCache:
    return EventCache(state.cache, state.settings.stream_lookup_cache_seconds)


def _remember_after_commit(state: EventsState, session: AsyncSession, event: Event) -> None:
    cache = event_cache(state)

    async def remember() -> None:
        await cache.remember(event)

    after_commit(session, remember)


def _announce_after_commit(
    state: EventsState, session: AsyncSession, event: Event, *, previous: EventStatus
) -> None:
    message = StateChange(
        event_id=event.id,
        tenant_id=event.tenant_id,
        status=EventStatus(event.status),
        previous=previous,
        version=event.version,
        at=event.updated_at,
    )
    cache = event_cache(state)

    async def announce() -> None:
        ref = await cache.remember(event)
        await state.pubsub.publish(state_channel(ref.id), message.model_dump_json().encode())
        log.info("event_state_changed", event_id=str(ref.id), status=ref.status.value)

    after_commit(session, announce)


# --- webhooks, follower notifications, analytics (jobs sent after commit) ----------------------


_WEBHOOK_EVENTS = {
    S.LIVE: "event.live",
    S.RECONNECTING: "event.reconnecting",
    S.ENDED: "event.ended",
}


async def _notify_transition(
    state: EventsState, session: AsyncSession, event: Event, *, previous: EventStatus
) -> None:

    status = EventStatus(event.status)
    kind = _WEBHOOK_EVENTS.get(status)
    if kind is not None:
        await webhooks.emit(
            session,
            event.tenant_id,
            kind,
            {
                "event_id": str(event.id),
                "title": event.title,
                "status": status.value,
                "previous": previous.value,
                "owner_id": str(event.owner_id),
                "playback_id": event.playback_id,
                "version": event.version,
            },
        )
    if status == S.LIVE and previous == S.READY:  # on air for the first time, not a resume
        notifications.notify_followers_live(
            session,
            tenant_id=event.tenant_id,
            owner_id=event.owner_id,
            event_id=event.id,
            title=event.title,
        )
    await state.hooks.emit(EVENT_TRANSITIONED, Transition(state, session, event, previous))
