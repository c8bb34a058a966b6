"""Chat moderation: deleting messages (by their authors, moderators or the event container's
auto-moderation), timeouts, bans, slow and followers-only modes, the pinned message.

Every change is flushed and audited in the caller's transaction; viewers hear of it after the
commit (`after_commit`). Timeouts live in the cache; bans and room settings in the database.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.analytics.ports import AnalyticsState
from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.roles import Role
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.chat import repository as repo
from bigfootlive.chat import wire
from bigfootlive.chat.reads import room_state
from bigfootlive.chat.rules import (
    InvalidMessage,
    MessageNotFound,
    NotModerator,
    TargetIsModerator,
    UserNotFound,
    can_moderate,
    timeout_key,
    to_out,
)
from bigfootlive.chat.schemas import ChatMessageOut, RoomSettingsOut, RoomSettingsPatch
from bigfootlive.db import after_commit, utcnow
from bigfootlive.errors import NotFound
from bigfootlive.events import access
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import ChatBan, ChatMessage, ChatRoom, Event, User


async def publish(state: AnalyticsState, event_id: uuid.UUID, message: BaseModel) -> None:
    await state.pubsub.publish(wire.chat_channel(event_id), message.model_dump_json().encode())


def publish_after_commit(
    state: AnalyticsState, session: AsyncSession, event_id: uuid.UUID, message: BaseModel
) -> None:
    async def send() -> None:
        await publish(state, event_id, message)

    after_commit(session, send)


async def _delete(
    state: AnalyticsState,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    event_id: uuid.UUID,
    message: ChatMessage,
    *,
    by: uuid.UUID | None,
    by_moderator: bool,
) -> None:
    """Delete `message` (unpinning it) and tell the viewers once the transaction commits."""
    message.deleted_at = utcnow()
    message.deleted_by = by
    room = await repo.get_room(session, tenant_id, event_id)
    if room is not None and room.pinned_message_id == message.id:
        room.pinned_message_id = None
        publish_after_commit(state, session, event_id, wire.Pinned(message=None))
    await session.flush()
    publish_after_commit(
        state, session, event_id, wire.Deleted(message_id=message.id, by_moderator=by_moderator)
    )


async def hide_flagged(
    state: AnalyticsState,
    session: AsyncSession,
    tenant_id: uuid.UUID,
    event_id: uuid.UUID,
    message_id: uuid.UUID,
    reason: str | None,
) -> bool:
    """The event container's auto-moderation flagged a message: delete it as a moderator would
    (audited, viewers told). False when it is gone or already deleted."""
    message = await repo.get_message(session, tenant_id, event_id, message_id)
    if message is None or message.deleted_at is not None:
        return False
    await _delete(state, session, tenant_id, event_id, message, by=None, by_moderator=True)
    await AuditLog(session, None, None).record(
        AuditAction.CHAT_AUTO_MODERATION,
        tenant_id=tenant_id,
        target_type="chat_message",
        target_id=message.id,
        details={"event_id": str(event_id), "author_id": str(message.user_id), "reason": reason},
    )
    return True


async def _moderated_event(
    session: AsyncSession, subject: AuthSubject, event_id: uuid.UUID
) -> Event:
    event = await access.get_viewable_event(session, subject, event_id)
    if not can_moderate(subject, event):
        raise NotModerator()
    return event


async def delete_message(
    state: AnalyticsState,
    session: AsyncSession,
    meta: RequestMeta | None,
    subject: AuthSubject,
    event_id: uuid.UUID,
    message_id: uuid.UUID,
) -> None:
    """Authors delete their own messages; moderators any (audited)."""
    event = await access.get_viewable_event(session, subject, event_id)
    message = await repo.get_message(session, event.tenant_id, event.id, message_id)
    if message is None or message.deleted_at is not None:
        raise MessageNotFound()
    own = message.user_id == subject.user_id
    if not own and not can_moderate(subject, event):
        raise NotModerator("Only the author or a moderator can delete this message")
    await _delete(
        state, session, event.tenant_id, event.id, message, by=subject.user_id, by_moderator=not own
    )
    if not own:
        await AuditLog(session, meta, subject.user_id).record(
            AuditAction.CHAT_DELETE,
            tenant_id=event.tenant_id,
            target_type="chat_message",
            target_id=message.id,
            details={"event_id": str(event.id), "author_id": str(message.user_id)},
        )


async def _target(session: AsyncSession, event: Event, user_id: uuid.UUID) -> User:
    # unscoped: public events take chat from signed-in users of any tenant.
    user = (await session.execute(select(User).where(User.id == user_id))).scalar_one_or_none()
    if user is None:
        raise UserNotFound()
    if user.id == event.owner_id or user.is_platform_admin:
        raise TargetIsModerator()
    if user.tenant_id == event.tenant_id and Role(user.role) >= Role.MODERATOR:
        raise TargetIsModerator()
    return user


async def timeout_user(
    state: AnalyticsState,
    session: AsyncSession,
    meta: RequestMeta | None,
    subject: AuthSubject,
    event_id: uuid.UUID,
    user_id: uuid.UUID,
    seconds: int,
    reason: str = "",
) -> dt.datetime:
    event = await _moderated_event(session, subject, event_id)
    await _target(session, event, user_id)
    if seconds > state.settings.chat_max_timeout_seconds:
        raise InvalidMessage(
            "The timeout is too long",
            code="timeout_too_long",
            max_seconds=state.settings.chat_max_timeout_seconds,
        )
    until = utcnow() + dt.timedelta(seconds=seconds)
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.CHAT_TIMEOUT,
        tenant_id=event.tenant_id,
        target_type="user",
        target_id=user_id,
        details={"event_id": str(event.id), "seconds": seconds, "reason": reason},
    )

    async def apply() -> None:
        await state.cache.set(
            timeout_key(event.id, user_id), until.isoformat().encode(), ttl=seconds
        )
        await publish(
            state, event.id, wire.Moderation(action="timeout", user_id=user_id, until=until)
        )

    after_commit(session, apply)
    return until


async def ban_user(
    state: AnalyticsState,
    session: AsyncSession,
    meta: RequestMeta | None,
    subject: AuthSubject,
    event_id: uuid.UUID,
    user_id: uuid.UUID,
    reason: str = "",
) -> None:
    """Ban from the event: refused at connect, and live connections are kicked."""
    event = await _moderated_event(session, subject, event_id)
    await _target(session, event, user_id)
    if await repo.get_ban(session, event.tenant_id, event.id, user_id) is None:
        session.add(
            ChatBan(
                event_id=event.id,
                user_id=user_id,
                tenant_id=event.tenant_id,
                banned_by=subject.user_id,
                reason=reason,
                created_at=utcnow(),
            )
        )
        await session.flush()
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.CHAT_BAN,
        tenant_id=event.tenant_id,
        target_type="user",
        target_id=user_id,
        details={"event_id": str(event.id), "reason": reason},
    )

    async def kick() -> None:
        await state.pubsub.publish(
            wire.control_channel(event.id), json.dumps({"kick": str(user_id)}).encode()
        )
        await publish(state, event.id, wire.Moderation(action="ban", user_id=user_id))

    after_commit(session, kick)


async def unban_user(
    state: AnalyticsState,
    session: AsyncSession,
    meta: RequestMeta | None,
    subject: AuthSubject,
    event_id: uuid.UUID,
    user_id: uuid.UUID,
) -> None:
    event = await _moderated_event(session, subject, event_id)
    ban = await repo.get_ban(session, event.tenant_id, event.id, user_id)
    if ban is None:
        raise NotFound("The user is not banned", code="not_banned")
    await session.delete(ban)
    await session.flush()
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.CHAT_UNBAN,
        tenant_id=event.tenant_id,
        target_type="user",
        target_id=user_id,
        details={"event_id": str(event.id)},
    )
    publish_after_commit(state, session, event.id, wire.Moderation(action="unban", user_id=user_id))


async def list_bans(
    session: AsyncSession, subject: AuthSubject, event_id: uuid.UUID
) -> Sequence[ChatBan]:
    event = await _moderated_event(session, subject, event_id)
    return await repo.list_bans(session, event.tenant_id, event.id)


async def _room_for_update(session: AsyncSession, event: Event) -> ChatRoom:
    room = await repo.get_room(session, event.tenant_id, event.id)
    if room is None:
        room = ChatRoom(
            event_id=event.id,
            tenant_id=event.tenant_id,
            slow_mode_seconds=0,
            followers_only=False,
            updated_at=utcnow(),
        )
        session.add(room)
    return room


async def update_room(
    state: AnalyticsState,
    session: AsyncSession,
    meta: RequestMeta | None,
    subject: AuthSubject,
    event_id: uuid.UUID,
    patch: RoomSettingsPatch,
) -> RoomSettingsOut:
    """Slow mode and followers-only mode."""
    event = await _moderated_event(session, subject, event_id)
    room = await _room_for_update(session, event)
    changes = patch.model_dump(exclude_none=True)
    for field, value in changes.items():
        setattr(room, field, value)
    room.updated_at = utcnow()
    await session.flush()
    for field, value in changes.items():
        action = (
            AuditAction.CHAT_SLOW_MODE
            if field == "slow_mode_seconds"
            else AuditAction.CHAT_FOLLOWERS_ONLY
        )
        await AuditLog(session, meta, subject.user_id).record(
            action,
            tenant_id=event.tenant_id,
            target_type="event",
            target_id=event.id,
            details={field: value},
        )
    publish_after_commit(
        state,
        session,
        event.id,
        wire.RoomUpdated(
            slow_mode_seconds=room.slow_mode_seconds, followers_only=room.followers_only
        ),
    )
    return await room_state(session, event)


async def pin_message(
    state: AnalyticsState,
    session: AsyncSession,
    meta: RequestMeta | None,
    subject: AuthSubject,
    event_id: uuid.UUID,
    message_id: uuid.UUID | None,
) -> ChatMessageOut | None:
    """Pin one message (replacing any pinned one), or unpin with None."""
    event = await _moderated_event(session, subject, event_id)
    pinned: ChatMessageOut | None = None
    if message_id is not None:
        message = await repo.get_message(session, event.tenant_id, event.id, message_id)
        if message is None or message.deleted_at is not None:
            raise MessageNotFound()
        pinned = to_out(message)
    room = await _room_for_update(session, event)
    room.pinned_message_id = message_id
    room.updated_at = utcnow()
    await session.flush()
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.CHAT_PIN if message_id is not None else AuditAction.CHAT_UNPIN,
        tenant_id=event.tenant_id,
        target_type="event",
        target_id=event.id,
        details={"message_id": None if message_id is None else str(message_id)},
    )
    publish_after_commit(state, session, event.id, wire.Pinned(message=pinned))
    return pinned
