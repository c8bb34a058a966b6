"""Chat over HTTP: history, sending, moderation, presence. The live path is the WebSocket
gateway (realtime/gateway.py); both call the same chat modules
(rules, send, moderation, reads)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel

from bigfootlive.authz.deps import CurrentSubject, OptionalSubject
from bigfootlive.chat import moderation, reads, send
from bigfootlive.chat.schemas import (
    BanIn,
    BanOut,
    ChatMessageOut,
    ChatSend,
    PinIn,
    PresenceOut,
    RoomSettingsOut,
    RoomSettingsPatch,
    TimeoutIn,
)
from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.events import access
from bigfootlive.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from bigfootlive.routing import JsonRoute

router = APIRouter(prefix="/api/events/{event_id}", tags=["chat"], route_class=JsonRoute)


class TimeoutOut(BaseModel):
    user_id: uuid.UUID
    until: dt.datetime


@router.get("/chat")
async def chat_history(
    event_id: uuid.UUID,
    subject: OptionalSubject,
    session: ReadSession,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[ChatMessageOut]:
    """Visible messages, newest first; follow `next_cursor` for older ones."""
    event = await access.get_viewable_event(session, subject, event_id)
    items, next_cursor = await reads.history(session, event, cursor=cursor, limit=limit)
    return Page[ChatMessageOut](items=items, next_cursor=next_cursor)


@router.post("/chat", status_code=status.HTTP_201_CREATED)
async def send_message(
    event_id: uuid.UUID, body: ChatSend, subject: CurrentSubject, state: State, session: DbSession
) -> ChatMessageOut:
    event = await access.get_viewable_event(session, subject, event_id)
    return await send.send_message(state, session, subject, event, body.body, body.reply_to)


# `:uuid` keeps this route from swallowing `DELETE /chat/pin` (and turning an unsupported method
# on `/chat/room` or `/chat/bans` into a 422 about a message id instead of a 405).
@router.delete("/chat/{message_id:uuid}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_message(
    event_id: uuid.UUID,
    message_id: uuid.UUID,
    subject: CurrentSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> None:
    await moderation.delete_message(state, session, meta, subject, event_id, message_id)


@router.get("/chat/room")
async def room_settings(
    event_id: uuid.UUID, subject: OptionalSubject, session: ReadSession
) -> RoomSettingsOut:
    event = await access.get_viewable_event(session, subject, event_id)
    return await reads.room_state(session, event)


@router.patch("/chat/room")
async def update_room(
    event_id: uuid.UUID,
    body: RoomSettingsPatch,
    subject: CurrentSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> RoomSettingsOut:
    """Slow mode and followers-only mode (moderators)."""
    return await moderation.update_room(state, session, meta, subject, event_id, body)


@router.put("/chat/pin")
async def pin_message(
    event_id: uuid.UUID,
    body: PinIn,
    subject: CurrentSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> ChatMessageOut | None:
    return await moderation.pin_message(state, session, meta, subject, event_id, body.message_id)


@router.delete("/chat/pin", status_code=status.HTTP_204_NO_CONTENT)
async def unpin_message(
    event_id: uuid.UUID, subject: CurrentSubject, state: State, session: DbSession, meta: Meta
) -> None:
    await moderation.pin_message(state, session, meta, subject, event_id, None)


@router.post("/chat/timeouts/{user_id}")
async def timeout_user(
    event_id: uuid.UUID,
    user_id: uuid.UUID,
    body: TimeoutIn,
    subject: CurrentSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> TimeoutOut:
    until = await moderation.timeout_user(
        state, session, meta, subject, event_id, user_id, body.seconds, body.reason
    )
    return TimeoutOut(user_id=user_id, until=until)


@router.get("/chat/bans")
async def list_bans(
    event_id: uuid.UUID, subject: CurrentSubject, session: ReadSession
) -> list[BanOut]:
    bans = await moderation.list_bans(session, subject, event_id)
    return [BanOut.model_validate(b, from_attributes=True) for b in bans]


@router.put("/chat/bans/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def ban_user(
    event_id: uuid.UUID,
    user_id: uuid.UUID,
    body: BanIn,
    subject: CurrentSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> None:
    await moderation.ban_user(state, session, meta, subject, event_id, user_id, body.reason)


@router.delete("/chat/bans/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def unban_user(
    event_id: uuid.UUID,
    user_id: uuid.UUID,
    subject: CurrentSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> None:
    await moderation.unban_user(state, session, meta, subject, event_id, user_id)


@router.get("/presence")
async def presence(
    event_id: uuid.UUID, subject: OptionalSubject, state: State, session: ReadSession
) -> PresenceOut:
    """Concurrent viewers across every process, and unique viewers since the event began."""
    event = await access.get_viewable_event(session, subject, event_id)
    counts = await state.hub.presence.counts(event.id)
    return PresenceOut(viewers=counts.viewers, unique_viewers=counts.unique_viewers)
