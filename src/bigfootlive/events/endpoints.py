from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from bigfootlive.authz.deps import CurrentSubject, OptionalSubject, require
from bigfootlive.authz.roles import Permission
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.config import Settings
from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.events import access, crud, keys, lifecycle, simulcast
from bigfootlive.events.playback import ingest_for, thumbnail_url, watch_url
from bigfootlive.events.schemas import (
    EventCreate,
    EventCreated,
    EventOut,
    EventStatus,
    EventUpdate,
    IngestOut,
)
from bigfootlive.events.simulcast_schemas import (
    DestinationCreate,
    DestinationOut,
    DestinationUpdate,
)
from bigfootlive.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, page_of
from bigfootlive.models import Event
from bigfootlive.routing import JsonRoute

router = APIRouter(prefix="/api/events", tags=["events"], route_class=JsonRoute)

EventCreator = Annotated[AuthSubject, Depends(require(Permission.EVENTS_CREATE))]
UPCOMING = [EventStatus.SCHEDULED, EventStatus.READY, EventStatus.LIVE, EventStatus.RECONNECTING]


_COMPUTED = {"watch_url", "thumbnail_url"}


def event_out(event: Event, settings: Settings) -> EventOut:
    on_air = EventStatus(event.status).is_on_air and settings.previews_enabled
    return EventOut.model_validate(
        {
            **{
                name: getattr(event, name)
                for name in EventOut.model_fields
                if name not in _COMPUTED
            },
            "watch_url": watch_url(settings, event.id),
            "thumbnail_url": thumbnail_url(settings, event.playback_id) if on_air else None,
        }
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_event(
    body: EventCreate, subject: EventCreator, state: State, session: DbSession, meta: Meta
) -> EventCreated:
    event, stream_key = await crud.create_event(state, session, meta, subject, body)
    return EventCreated(
        **event_out(event, state.settings).model_dump(),
        ingest=ingest_for(state.settings, event.playback_id, stream_key),
    )


@router.get("")
async def list_events(
    subject: OptionalSubject,
    state: State,
    session: ReadSession,
    status_: Annotated[list[EventStatus] | None, Query(alias="status")] = None,
    owner_id: uuid.UUID | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[EventOut]:
    """Live and upcoming events by default; `status` (repeatable) and `owner_id` filter."""
    rows = await crud.list_events(
        session,
        subject,
        statuses=status_ or UPCOMING,
        owner_id=owner_id,
        cursor=cursor,
        limit=limit,
    )
    items, next_cursor = page_of(rows, limit)
    return Page[EventOut](
        items=[event_out(e, state.settings) for e in items], next_cursor=next_cursor
    )


@router.get("/{event_id}")
async def get_event(
    event_id: uuid.UUID,
    subject: OptionalSubject,
    state: State,
    session: ReadSession,
    token: Annotated[str | None, Query(max_length=2000, description="playback token")] = None,
) -> EventOut:
    playback = None if token is None else state.playback_tokens.verify_for(token, event_id)
    return event_out(
        await access.get_viewable_event(session, subject, event_id, playback=playback),
        state.settings,
    )


@router.put("/{event_id}")
async def update_event(
    event_id: uuid.UUID,
    body: EventUpdate,
    subject: CurrentSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> EventOut:
    return event_out(
        await crud.update_event(state, session, meta, subject, event_id, body), state.settings
    )


@router.delete("/{event_id}")
async def cancel_event(
    event_id: uuid.UUID, subject: CurrentSubject, state: State, session: DbSession, meta: Meta
) -> EventOut:
    """Cancels an event that has not gone on air; the record stays for history."""
    return event_out(
        await lifecycle.cancel_event(state, session, meta, subject, event_id), state.settings
    )


@router.post("/{event_id}/start")
async def start_event(
    event_id: uuid.UUID, subject: CurrentSubject, state: State, session: DbSession, meta: Meta
) -> EventOut:
    return event_out(
        await lifecycle.start_event(state, session, meta, subject, event_id), state.settings
    )


@router.post("/{event_id}/stop")
async def stop_event(
    event_id: uuid.UUID, subject: CurrentSubject, state: State, session: DbSession, meta: Meta
) -> EventOut:
    return event_out(
        await lifecycle.stop_event(state, session, meta, subject, event_id), state.settings
    )


@router.post("/{event_id}/stream-key")
async def rotate_stream_key(
    event_id: uuid.UUID, subject: CurrentSubject, state: State, session: DbSession, meta: Meta
) -> IngestOut:
    """Replace the stream key; the old one is refused from now on. Needs a recent MFA (step-up)."""
    event, stream_key = await keys.rotate_stream_key(state, session, meta, subject, event_id)
    return ingest_for(state.settings, event.playback_id, stream_key)


# --- simulcast destinations (managers only; keys go in, never out) ---------------------------


@router.get("/{event_id}/simulcast")
async def list_simulcast(
    event_id: uuid.UUID, subject: CurrentSubject, session: ReadSession
) -> list[DestinationOut]:
    rows = await simulcast.list_destinations(session, subject, event_id)
    return [simulcast.destination_out(d) for d in rows]


@router.post("/{event_id}/simulcast", status_code=status.HTTP_201_CREATED)
async def add_simulcast(
    event_id: uuid.UUID,
    body: DestinationCreate,
    subject: CurrentSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> DestinationOut:
    """Restream the event to a platform (YouTube, Twitch, Facebook, Kick) or any RTMP/RTMPS
    URL while it is live. The stream key is stored encrypted and only shown as a hint."""
    destination = await simulcast.create_destination(state, session, meta, subject, event_id, body)
    return simulcast.destination_out(destination)


@router.patch("/{event_id}/simulcast/{destination_id}")
async def update_simulcast(
    event_id: uuid.UUID,
    destination_id: uuid.UUID,
    body: DestinationUpdate,
    subject: CurrentSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> DestinationOut:
    destination = await simulcast.update_destination(
        state, session, meta, subject, event_id, destination_id, body
    )
    return simulcast.destination_out(destination)


@router.delete("/{event_id}/simulcast/{destination_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_simulcast(
    event_id: uuid.UUID,
    destination_id: uuid.UUID,
    subject: CurrentSubject,
    session: DbSession,
    meta: Meta,
) -> Response:
    await simulcast.delete_destination(session, meta, subject, event_id, destination_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
