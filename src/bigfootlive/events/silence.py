"""A media server that dies without a word (kill -9, a crashed host) sends no unpublish: its
events would stay `live` for ever. With PUBLISHER_SILENCE_SECONDS every publish and every
periodic "publisher alive" callback (nginx-rtmp `on_update`, the generic `publisher_alive`)
refreshes a short-lived cache key per event; a sweep moves a live event whose key ran out to
`reconnecting`, as an unpublish would. The publisher's return (the media server restarted, the
encoder reconnected: a new publish) takes it back to `live`; otherwise the reconnect window ends
it. Runs in every API process; the conditional transition moves each event once."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select

from bigfootlive.authz.scoping import platform_scope
from bigfootlive.db import utcnow
from bigfootlive.events import lifecycle
from bigfootlive.events.ports import EventsState
from bigfootlive.events.schemas import EventStatus
from bigfootlive.kit.backends import Cache
from bigfootlive.models import Event


def alive_key(event_id: uuid.UUID) -> str:
    return f"streaming:alive:{event_id}"


async def heard_from_publisher(state: EventsState, cache: Cache, event_id: uuid.UUID) -> None:
    """The media server vouched for the event's publisher just now."""
    seconds = state.settings.publisher_silence_seconds
    if seconds > 0:
        await cache.set(alive_key(event_id), b"1", ttl=seconds)


async def mark_silent_publishers(state: EventsState) -> list[Event]:
    """Move live events not heard of for PUBLISHER_SILENCE_SECONDS to `reconnecting`."""
    seconds = state.settings.publisher_silence_seconds
    if seconds <= 0:
        return []
    # Live for longer than the silence: a publish sets the key before its transition commits.
    cutoff = utcnow() - dt.timedelta(seconds=seconds)
    # unscoped: a platform-wide sweep over every tenant's live events (as the reconnect sweep).
    stmt = select(Event).where(Event.status == EventStatus.LIVE.value, Event.went_live_at < cutoff)
    async with state.db.transaction() as session:
        with platform_scope("publisher silence sweep"):
            live = (await session.execute(stmt)).scalars().all()
        if not live:
            return []
        heard = await state.cache.mget(*(alive_key(e.id) for e in live))
        moved = []
        for event, seen in zip(live, heard, strict=True):
            if seen is None:
                done = await lifecycle.publisher_disconnected(
                    state, session, event, event.publisher_id
                )
                if done is not None:
                    moved.append(done)
    return moved
