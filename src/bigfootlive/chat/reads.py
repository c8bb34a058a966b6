"""Joining and reading a chat: the ban check at connect, the room as viewers see it,
history by cursor, and what a reconnecting viewer missed."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.authz.subject import AuthSubject
from bigfootlive.chat import repository as repo
from bigfootlive.chat.rules import Banned, to_out
from bigfootlive.chat.schemas import ChatMessageOut, RoomSettingsOut
from bigfootlive.events.cache import EventRef
from bigfootlive.kit.pagination import page_of
from bigfootlive.models import Event


async def ensure_not_banned(
    session: AsyncSession, subject: AuthSubject | None, event: Event
) -> None:
    if subject is None:
        return
    if await repo.get_ban(session, event.tenant_id, event.id, subject.user_id) is not None:
        raise Banned()


async def room_state(session: AsyncSession, event: Event) -> RoomSettingsOut:
    room = await repo.get_room(session, event.tenant_id, event.id)
    if room is None:
        return RoomSettingsOut(slow_mode_seconds=0, followers_only=False, pinned=None)
    pinned = None
    if room.pinned_message_id is not None:
        message = await repo.get_message(session, event.tenant_id, event.id, room.pinned_message_id)
        if message is not None and message.deleted_at is None:
            pinned = to_out(message)
    return RoomSettingsOut(
        slow_mode_seconds=room.slow_mode_seconds,
        followers_only=room.followers_only,
        pinned=pinned,
    )


async def history(
    session: AsyncSession, event: Event, *, cursor: str | None, limit: int
) -> tuple[list[ChatMessageOut], str | None]:
    """Visible messages, newest first, by cursor."""
    rows = await repo.history_page(session, event.tenant_id, event.id, cursor=cursor, limit=limit)
    items, next_cursor = page_of(rows, limit)
    return [to_out(m) for m in items], next_cursor


async def missed_since(
    session: AsyncSession, event: Event | EventRef, last_id: uuid.UUID, limit: int
) -> tuple[list[ChatMessageOut], bool]:
    """Messages after `last_id`, oldest first, at most `limit`; the flag says nothing more was
    missed. An unknown id gives the newest `limit` messages, flagged incomplete."""
    last = await repo.get_message(session, event.tenant_id, event.id, last_id)
    if last is None:
        rows = await repo.history_page(session, event.tenant_id, event.id, cursor=None, limit=limit)
        return [to_out(m) for m in reversed(rows[:limit])], False
    rows = await repo.messages_after(session, event.tenant_id, event.id, last, limit + 1)
    return [to_out(m) for m in rows[:limit]], len(rows) <= limit
