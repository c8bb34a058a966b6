"""Queries on chat tables, always restricted to the event's tenant."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.authz.scoping import scoped
from bigfootlive.kit.pagination import paginate
from bigfootlive.models import ChatBan, ChatMessage, ChatRoom, Follow, Tenant


async def get_message(
    session: AsyncSession, tenant_id: uuid.UUID, event_id: uuid.UUID, message_id: uuid.UUID
) -> ChatMessage | None:
    stmt = scoped(select(ChatMessage), ChatMessage, tenant_id).where(
        ChatMessage.id == message_id, ChatMessage.event_id == event_id
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def history_page(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    event_id: uuid.UUID,
    *,
    cursor: str | None,
    limit: int,
) -> Sequence[ChatMessage]:
    stmt = scoped(select(ChatMessage), ChatMessage, tenant_id).where(
        ChatMessage.event_id == event_id, ChatMessage.deleted_at.is_(None)
    )
    stmt = paginate(stmt, ChatMessage.created_at, ChatMessage.id, cursor=cursor, limit=limit)
    return (await session.execute(stmt)).scalars().all()


async def messages_after(
    session: AsyncSession, tenant_id: uuid.UUID, event_id: uuid.UUID, last: ChatMessage, limit: int
) -> Sequence[ChatMessage]:
    """Visible messages after `last` in (created_at, id) order, at most `limit`."""
    stmt = (
        scoped(select(ChatMessage), ChatMessage, tenant_id)
        .where(
            ChatMessage.event_id == event_id,
            ChatMessage.deleted_at.is_(None),
            or_(
                ChatMessage.created_at > last.created_at,
                and_(ChatMessage.created_at == last.created_at, ChatMessage.id > last.id),
            ),
        )
        .order_by(ChatMessage.created_at, ChatMessage.id)
        .limit(limit)
    )
    return (await session.execute(stmt)).scalars().all()


async def get_ban(
    session: AsyncSession, tenant_id: uuid.UUID, event_id: uuid.UUID, user_id: uuid.UUID
) -> ChatBan | None:
    stmt = scoped(select(ChatBan), ChatBan, tenant_id).where(
        ChatBan.event_id == event_id, ChatBan.user_id == user_id
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_bans(
    session: AsyncSession, tenant_id: uuid.UUID, event_id: uuid.UUID
) -> Sequence[ChatBan]:
    stmt = scoped(select(ChatBan), ChatBan, tenant_id).where(ChatBan.event_id == event_id)
    return (await session.execute(stmt.order_by(ChatBan.created_at))).scalars().all()


async def send_context(
    session: AsyncSession, tenant_id: uuid.UUID, event_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[ChatRoom | None, bool, dict[str, Any] | None]:
    """What a chat send checks, in one round trip: the event's room (None: the defaults),
    whether the user is banned from the event, and the tenant's settings."""
    banned = (
        scoped(select(ChatBan.user_id), ChatBan, tenant_id)
        .where(ChatBan.event_id == event_id, ChatBan.user_id == user_id)
        .exists()
    )
    # unscoped: the room is joined on the tenant row's own id, itself fixed to `tenant_id`
    stmt = (
        select(ChatRoom, banned.label("banned"), Tenant.settings)
        .select_from(Tenant)
        .outerjoin(ChatRoom, and_(ChatRoom.tenant_id == Tenant.id, ChatRoom.event_id == event_id))
        .where(Tenant.id == tenant_id)
    )
    row = (await session.execute(stmt)).one_or_none()
    if row is None:
        return None, False, None
    return row[0], bool(row[1]), row[2]


async def get_room(
    session: AsyncSession, tenant_id: uuid.UUID, event_id: uuid.UUID
) -> ChatRoom | None:
    stmt = scoped(select(ChatRoom), ChatRoom, tenant_id).where(ChatRoom.event_id == event_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def follows(
    session: AsyncSession, tenant_id: uuid.UUID, follower_id: uuid.UUID, followee_id: uuid.UUID
) -> bool:
    stmt = scoped(select(Follow.follower_id), Follow, tenant_id).where(
        Follow.follower_id == follower_id, Follow.followee_id == followee_id
    )
    return (await session.execute(stmt)).first() is not None
