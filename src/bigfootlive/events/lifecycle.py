"""Live events: the lifecycle (state transitions). Knows nothing of HTTP.

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
import functools
import uuid
from typing import Any

import structlog
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.db import after_commit, utcnow
from bigfootlive.errors import Conflict
from bigfootlive.events import repository as repo
from bigfootlive.events.access import EventNotFound, get_managed_event
from bigfootlive.events.cache import EventCache, EventRef
from bigfootlive.events.hooks import (
    EVENT_STARTING,
    EVENT_STOPPED,
    EVENT_TRANSITIONED,
    Starting,
    Stopped,
    Transition,
)
from bigfootlive.events.playback import watch_url
from bigfootlive.events.ports import EventsState
from bigfootlive.events.schemas import EventStatus, StateChange
from bigfootlive.events.wire import CHANGED_CHANNEL, state_channel
from bigfootlive.kit.backends import Cache
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import Event
from bigfootlive.notifications import service as notifications
from bigfootlive.webhooks import service as webhooks

log = structlog.get_logger(__name__)

S = EventStatus


# --- errors: every illegal transition is a 409 with its own code -------------------------------


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
    was_on_air = EventStatus(event.status).is_on_air
    publisher_id, playback_id = event.publisher_id, event.playback_id
    stopped = await _apply(state, session, event, "stop", meta=meta, actor=subject)
    if was_on_air:
        for hook in state.hooks.handlers(EVENT_STOPPED):
            after_commit(
                session,
                functools.partial(hook, Stopped(state, event_id, playback_id, publisher_id)),
            )
    return stopped


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
    if isinstance(event, EventRef) and event.status in (S.READY, S.RECONNECTING):
        moved = await _go_live(state, session, event, publisher_id)
        if moved is not None:
            return moved
    return await _apply(state, session, event, "publish", publisher_id=publisher_id)


async def _go_live(
    state: EventsState, session: AsyncSession, ref: EventRef, publisher_id: str
) -> Event | None:
    """The media server's publish on the word of a cache snapshot, when nobody listens: one
    statement committed on its own (`repo.go_live`: one round trip on PostgreSQL, no ORM).
    None when it changed nothing (a stale snapshot, or webhooks or followers to serve):
    `_apply` then re-reads and decides, writing those rows in the session's transaction.
    Hooks for the change run in `session` after it committed (none acts on a go-live)."""
    event = await repo.go_live(
        state.db,
        tenant_id=ref.tenant_id,
        event_id=ref.id,
        expected=ref.status,
        publisher_id=publisher_id,
    )
    if event is None:
        return None
    # Its log line is the caller's (the media server's decision: `streaming.service`).
    _announce_after_commit(state, session, event, previous=ref.status, logged=False)
    await _notify_transition(
        state, session, event, previous=ref.status, webhooks_wanted=False, followers_wanted=False
    )
    return event


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
    # The publisher leaves: a key kept for it after a rotation (`rotated_key_hash`) goes too.
    if action == "unpublish":
        return {"publisher_id": None, "disconnected_at": now, "rotated_key_hash": None}
    if action in ("stop", "expire"):
        reason = "stopped" if action == "stop" else "publisher_gone"
        return {
            "publisher_id": None,
            "ended_at": now,
            "ended_reason": reason,
            "rotated_key_hash": None,
        }
    if action == "cancel":
        return {"ended_at": now, "ended_reason": "cancelled", "rotated_key_hash": None}
    raise ValueError(action)


# --- after commit: cache and pub/sub -------------------------------------------------------------


def event_cache(state: EventsState, cache: Cache | None = None) -> EventCache:
    """The event snapshots in `state.cache` (or in `cache`, a view of it)."""
    return EventCache(
        state.cache if cache is None else cache, state.settings.stream_lookup_cache_seconds
    )


def _announce_after_commit(
    state: EventsState,
    session: AsyncSession,
    event: Event,
    *,
    previous: EventStatus,
    logged: bool = True,
) -> None:
    """The snapshot and the news of the change, once committed; `logged` False: the caller
    logs the change itself (one line per media-server decision)."""
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
        # The snapshot first, then the news of it: one round trip on Redis.
        news = [
            (state_channel(event.id), message.model_dump_json().encode()),
            (CHANGED_CHANNEL, str(event.id).encode()),
        ]
        ref = await cache.remember(event, pubsub=state.pubsub, messages=news)
        if logged:
            log.info("event_state_changed", event_id=str(ref.id), status=ref.status.value)

    after_commit(session, announce)


# --- webhooks, follower notifications, analytics (jobs sent after commit) ----------------------


_WEBHOOK_EVENTS = {
    S.LIVE: "event.live",
    S.RECONNECTING: "event.reconnecting",
    S.ENDED: "event.ended",
}


async def _notify_transition(
    state: EventsState,
    session: AsyncSession,
    event: Event,
    *,
    previous: EventStatus,
    webhooks_wanted: bool = True,
    followers_wanted: bool = True,
) -> None:
    """`webhooks_wanted` / `followers_wanted` False: the caller knows (from the statement
    that made the change) that the tenant has no active endpoint / the owner no follower."""
    status = EventStatus(event.status)
    kind = _WEBHOOK_EVENTS.get(status)
    if kind is not None and webhooks_wanted:
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
    if status == S.LIVE and previous == S.READY and followers_wanted:  # on air, not a resume
        notifications.notify_followers_live(
            session,
            tenant_id=event.tenant_id,
            owner_id=event.owner_id,
            event_id=event.id,
            title=event.title,
            watch_url=watch_url(state.settings, event.id),
        )
    await state.hooks.emit(EVENT_TRANSITIONED, Transition(state, session, event, previous))
