"""Sending a chat message: validate, rate-limit, apply the room's modes, store.

The message is flushed in the caller's transaction; the broadcast goes out after the commit
(`after_commit`), so a sender's ack (sent by the caller after commit) always means "stored".
Timeouts and slow-mode windows live in the cache (Redis when configured): they are short-lived
and shared by every process. Bans and room settings live in the database.
"""

from __future__ import annotations

import asyncio
import uuid

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
    settings = state.settings
    text = clean_body(body, settings.chat_max_length)
    moderator = can_moderate(subject, event)
    # The cache checks go out together, and the database ones in one query: a send waits for
    # two round trips here, not six.
    revoked, until, allowed = await asyncio.gather(
        state.revoked.is_revoked(subject.session_id),
        state.cache.get(timeout_key(event.id, subject.user_id)),
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
