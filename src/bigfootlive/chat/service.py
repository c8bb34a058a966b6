"""Chat rules: who may say what, when; moderation. Knows nothing of HTTP or WebSockets.

Every accepted message is flushed in the caller's transaction; the broadcast goes out after the
commit (`after_commit`), so a sender's ack (sent by the caller after commit) always means "stored".
Timeouts and slow-mode windows live in the cache (Redis when configured): they are short-lived and
shared by every process. Bans and room settings live in the database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import re
import unicodedata
import uuid
from collections.abc import Sequence

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.analytics import service as analytics
from bigfootlive.analytics.ports import AnalyticsState
from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.roles import Permission, Role
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.chat import repository as repo
from bigfootlive.chat import wire
from bigfootlive.chat.schemas import ChatMessageOut, RoomSettingsOut, RoomSettingsPatch
from bigfootlive.db import after_commit, utcnow
from bigfootlive.errors import Conflict, Forbidden, NotFound, TooManyRequests, Unprocessable
from bigfootlive.events import access
from bigfootlive.events.schemas import EventStatus
from bigfootlive.kit.pagination import page_of
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import ChatBan, ChatMessage, ChatRoom, Event, User
from bigfootlive.tenants.schemas import TenantSettings


class NotModerator(Forbidden):
    code = "not_moderator"
    message = "Only the event's owner, tenant moderators and admins can do this"


class ReadOnly(Forbidden):
    code = "read_only"
    message = "Sign in to take part in the chat"


class Banned(Forbidden):
    code = "banned"
    message = "You are banned from this event's chat"


class TimedOut(Forbidden):
    code = "timed_out"
    message = "You are timed out"


class FollowersOnly(Forbidden):
    code = "followers_only"
    message = "Only followers of the streamer can chat right now"


class SlowMode(TooManyRequests):
    code = "slow_mode"
    message = "Slow mode is on; wait before sending again"


class ChatRateLimited(TooManyRequests):
    code = "rate_limited"
    message = "You are sending messages too fast"


class InvalidMessage(Unprocessable):
    code = "invalid_message"
    message = "The message is not valid"


class BlockedWord(Unprocessable):
    code = "blocked_word"
    message = "The message contains a word that is not allowed here"


class ChatClosed(Conflict):
    code = "chat_closed"
    message = "The event has ended; its chat is closed"


class MessageNotFound(NotFound):
    code = "message_not_found"
    message = "No such message"


class TargetIsModerator(Forbidden):
    code = "target_is_moderator"
    message = "Moderators, admins and the event's owner cannot be moderated"


class UserNotFound(NotFound):
    code = "user_not_found"
    message = "No such user"


# Bidirectional overrides/isolates can disguise text; other control characters have no place.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def can_moderate(subject: AuthSubject | None, event: Event) -> bool:
    """The event's owner, the tenant's moderators and admins, platform admins."""
    if subject is None:
        return False
    if subject.is_platform_admin:
        return True
    if subject.tenant_id != event.tenant_id:
        return False
    return subject.user_id == event.owner_id or subject.can(Permission.CHAT_MODERATE)


def to_out(message: ChatMessage) -> ChatMessageOut:
    return ChatMessageOut(
        id=message.id,
        event_id=message.event_id,
        user_id=message.user_id,
        author=message.author_name,
        body=message.body,
        reply_to=message.reply_to_id,
        created_at=message.created_at,
    )


def clean_body(body: str, max_length: int) -> str:
    text = unicodedata.normalize("NFC", body).strip()
    if not text:
        raise InvalidMessage("The message is empty", code="empty_message")
    if len(text) > max_length:
        raise InvalidMessage(
            f"The message is longer than {max_length} characters",
            code="message_too_long",
            max_length=max_length,
        )
    for char in text:
        if char in _BIDI or (unicodedata.category(char) == "Cc" and char != "\n"):
            raise InvalidMessage("The message contains control characters", code="invalid_text")
    return text


@functools.lru_cache(maxsize=256)
def _blocked_pattern(words: tuple[str, ...]) -> re.Pattern[str] | None:
    if not words:
        return None
    alternatives = "|".join(re.escape(w.strip()) for w in words if w.strip())
    if not alternatives:
        return None
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def find_blocked_word(text: str, words: Sequence[str]) -> str | None:
    pattern = _blocked_pattern(tuple(sorted(set(words))))
    if pattern is None:
        return None
    match = pattern.search(text)
    return None if match is None else match.group(0)


async def publish(state: AnalyticsState, event_id: uuid.UUID, message: BaseModel) -> None:
    await state.pubsub.publish(wire.chat_channel(event_id), message.model_dump_json().encode())


def publish_after_commit(
    state: AnalyticsState, session: AsyncSession, event_id: uuid.UUID, message: BaseModel
) -> None:
    async def send() -> None:
        await publish(state, event_id, message)

    after_commit(session, send)


def _timeout_key(event_id: uuid.UUID, user_id: uuid.UUID) -> str:
    return f"chat:timeout:{event_id}:{user_id}"


def _slow_key(event_id: uuid.UUID, user_id: uuid.UUID) -> str:
    return f"chat:slow:{event_id}:{user_id}"


# --- joining and reading ---------------------------------------------------------------------


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
    session: AsyncSession, event: Event, last_id: uuid.UUID, limit: int
) -> tuple[list[ChatMessageOut], bool]:
    """Messages after `last_id`, oldest first, at most `limit`; the flag says nothing more was
    missed. An unknown id gives the newest `limit` messages, flagged incomplete."""
    last = await repo.get_message(session, event.tenant_id, event.id, last_id)
    if last is None:
        rows = await repo.history_page(session, event.tenant_id, event.id, cursor=None, limit=limit)
        return [to_out(m) for m in reversed(rows[:limit])], False
    rows = await repo.messages_after(session, event.tenant_id, event.id, last, limit + 1)
    return [to_out(m) for m in rows[:limit]], len(rows) <= limit


# --- sending -----------------------------------------------------------------------------------


async def send_message(
    state: AnalyticsState,
    session: AsyncSession,
    subject: AuthSubject | None,
    event: Event,
    body: str,
    reply_to: uuid.UUID | None = None,
) -> ChatMessageOut:
    """Validate, rate-limit, moderate, store. The broadcast follows the commit."""
    if subject is None:
        raise ReadOnly()
    if EventStatus(event.status).is_finished:
        raise ChatClosed()
    settings = state.settings
    text = clean_body(body, settings.chat_max_length)
    moderator = can_moderate(subject, event)
    # The cache checks go out together, and the database ones in one query: a send waits for
    # two round trips here, not six.
    revoked, until, allowed = await asyncio.gather(
        state.revoked.is_revoked(subject.session_id),
        state.cache.get(_timeout_key(event.id, subject.user_id)),
        state.limiter.hit(settings.chat_rate_limit, "chat", str(event.id), str(subject.user_id)),
    )
    if revoked:
        raise Forbidden("The session has ended", code="session_revoked")
    room, banned, tenant_settings = await repo.send_context(
        session, event.tenant_id, event.id, subject.user_id
    )
    if banned:
        raise Banned()
    if until is not None and not moderator:
        raise TimedOut(until=until.decode())
    if not allowed:
        raise ChatRateLimited()
    blocked_words = TenantSettings.model_validate(tenant_settings or {}).chat_blocked_words
    if find_blocked_word(text, blocked_words) is not None:
        raise BlockedWord()
    if room is not None and not moderator:
        if room.followers_only and not await repo.follows(
            session, event.tenant_id, subject.user_id, event.owner_id
        ):
            raise FollowersOnly()
        if room.slow_mode_seconds > 0 and not await state.cache.add(
            _slow_key(event.id, subject.user_id), b"1", ttl=room.slow_mode_seconds
        ):
            raise SlowMode(retry_after=room.slow_mode_seconds)
    if reply_to is not None:
        parent = await repo.get_message(session, event.tenant_id, event.id, reply_to)
        if parent is None or parent.deleted_at is not None:
            raise MessageNotFound("The message replied to does not exist")
    message = ChatMessage(
        id=uuid.uuid4(),
        tenant_id=event.tenant_id,
        event_id=event.id,
        user_id=subject.user_id,
        author_name=subject.user.display_name,
        body=text,
        reply_to_id=reply_to,
        created_at=utcnow(),
    )
    session.add(message)
    await session.flush()
    out = to_out(message)
    stored = wire.ChatOut(message=out).model_dump_json().encode()
    for_container = wire.ChatMessage(
        message_id=str(message.id), user_id=str(subject.user_id), text=text
    )

    async def delivered() -> None:
        # Viewers, the event container's auto-moderation and the analytics counters hear of
        # the message once it is stored.
        await asyncio.gather(
            state.pubsub.publish(wire.chat_channel(event.id), stored),
            state.pubsub.publish(
                wire.inbound_channel(event.id), for_container.model_dump_json().encode()
            ),
            analytics.record_activity(state, event.id, event.tenant_id, "chat"),
        )

    after_commit(session, delivered)
    return out


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


# --- deleting and moderation -------------------------------------------------------------------


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
            _timeout_key(event.id, user_id), until.isoformat().encode(), ttl=seconds
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
