"""Sending a chat message: validate, rate-limit, apply the room's modes, store.

The message is flushed in the caller's transaction; the broadcast goes out after the commit
(`after_commit`), so a sender's ack (sent by the caller after commit) always means "stored".
Timeouts and slow-mode windows live in the cache (Redis when configured): they are short-lived
and shared by every process. Bans and room settings live in the database.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.analytics import service as analytics
from bigfootlive.analytics.ports import AnalyticsState
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.chat import repository as repo
from bigfootlive.chat import wire
from bigfootlive.chat.rules import (
    Banned,
    BlockedWord,
    ChatClosed,
    ChatRateLimited,
    FollowersOnly,
    MessageNotFound,
    ReadOnly,
    SlowMode,
    TimedOut,
    can_moderate,
    clean_body,
    find_blocked_word,
    timeout_key,
    to_out,
)
from bigfootlive.chat.schemas import ChatMessageOut
from bigfootlive.db import after_commit, utcnow
from bigfootlive.errors import Forbidden
from bigfootlive.events.cache import EventRef
from bigfootlive.events.schemas import EventStatus
from bigfootlive.models import ChatMessage, Event
from bigfootlive.tenants.schemas import TenantSettings


def _slow_key(event_id: uuid.UUID, user_id: uuid.UUID) -> str:
    return f"chat:slow:{event_id}:{user_id}"


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
    text = clean_body(body, state.settings.chat_max_length)
    moderator = can_moderate(subject, event)
    # The cache checks go out together, and the database ones in one query: a send waits for
    # two round trips here, not six.
    revoked, until, allowed = await cache_checks(state, subject, event.id)
    room, banned, tenant_settings = await repo.send_context(
        session, event.tenant_id, event.id, subject.user_id
    )
    refuse(
        revoked=revoked,
        banned=banned,
        until=until,
        allowed=allowed,
        moderator=moderator,
        text=text,
        tenant_settings=tenant_settings,
    )
    if room is not None and not moderator:
        await room_modes(
            state, session, subject, event, room.followers_only, room.slow_mode_seconds
        )
    if reply_to is not None:
        await check_parent(session, event, reply_to)
    message = new_message(subject, event, text, reply_to)
    session.add(message)
    await session.flush()
    out = to_out(message)
    after_commit(session, announcement(state, event, out))
    return out


def cache_checks(
    state: AnalyticsState, subject: AuthSubject, event_id: uuid.UUID
) -> Awaitable[tuple[bool, bytes | None, bool]]:
    """Whether the session is revoked, the user's timeout (if any), and whether the rate limit
    lets the message through: the cache's answers, asked together."""
    settings = state.settings
    return asyncio.gather(
        state.revoked.is_revoked(subject.session_id),
        state.cache.get(timeout_key(event_id, subject.user_id)),
        state.limiter.hit(settings.chat_rate_limit, "chat", str(event_id), str(subject.user_id)),
    )


def refuse(
    *,
    revoked: bool,
    banned: bool,
    until: bytes | None,
    allowed: bool,
    moderator: bool,
    text: str,
    tenant_settings: dict[str, Any] | None,
) -> None:
    """Raise the first refusal that applies, in the order a sender is told of them."""
    if revoked:
        raise Forbidden("The session has ended", code="session_revoked")
    if banned:
        raise Banned()
    if until is not None and not moderator:
        raise TimedOut(until=until.decode())
    if not allowed:
        raise ChatRateLimited()
    blocked_words = TenantSettings.model_validate(tenant_settings or {}).chat_blocked_words
    if find_blocked_word(text, blocked_words) is not None:
        raise BlockedWord()


async def room_modes(
    state: AnalyticsState,
    session: AsyncSession,
    subject: AuthSubject,
    event: Event | EventRef,
    followers_only: bool,
    slow_mode_seconds: int,
) -> None:
    """The room's followers-only and slow modes (for a sender who is not a moderator)."""
    if followers_only and not await repo.follows(
        session, event.tenant_id, subject.user_id, event.owner_id
    ):
        raise FollowersOnly()
    await slow_mode(state, subject, event, slow_mode_seconds)


async def slow_mode(
    state: AnalyticsState, subject: AuthSubject, event: Event | EventRef, seconds: int
) -> None:
    if seconds > 0 and not await state.cache.add(
        _slow_key(event.id, subject.user_id), b"1", ttl=seconds
    ):
        raise SlowMode(retry_after=seconds)


async def check_parent(session: AsyncSession, event: Event | EventRef, reply_to: uuid.UUID) -> None:
    parent = await repo.get_message(session, event.tenant_id, event.id, reply_to)
    if parent is None or parent.deleted_at is not None:
        raise MessageNotFound("The message replied to does not exist")


def new_message(
    subject: AuthSubject, event: Event | EventRef, text: str, reply_to: uuid.UUID | None
) -> ChatMessage:
    return ChatMessage(
        id=uuid.uuid4(),
        tenant_id=event.tenant_id,
        event_id=event.id,
        user_id=subject.user_id,
        author_name=subject.user.display_name,
        body=text,
        reply_to_id=reply_to,
        created_at=utcnow(),
    )


def announcement(
    state: AnalyticsState, event: Event | EventRef, out: ChatMessageOut
) -> Callable[[], Awaitable[None]]:
    """What follows a stored message: viewers, the event container's auto-moderation and the
    analytics counters hear of it."""
    stored = wire.ChatOut(message=out).model_dump_json().encode()
    for_container = wire.ChatMessage(
        message_id=str(out.id), user_id=str(out.user_id), text=out.body
    )

    async def delivered() -> None:
        await asyncio.gather(
            state.pubsub.publish(wire.chat_channel(event.id), stored),
            state.pubsub.publish(
                wire.inbound_channel(event.id), for_container.model_dump_json().encode()
            ),
            analytics.record_activity(state, event.id, event.tenant_id, "chat"),
        )

    return delivered
