from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import Row, and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.authz.scoping import scoped
from bigfootlive.kit.pagination import decode_cursor
from bigfootlive.models import Follow, User


async def follow_counts(session: AsyncSession, user_id: uuid.UUID) -> tuple[int, int]:
    followers = select(func.count()).select_from(Follow).where(Follow.followee_id == user_id)
    following = select(func.count()).select_from(Follow).where(Follow.follower_id == user_id)
    row = (
        await session.execute(select(followers.scalar_subquery(), following.scalar_subquery()))
    ).one()
    return int(row[0]), int(row[1])


async def is_following(session: AsyncSession, follower: uuid.UUID, followee: uuid.UUID) -> bool:
    found = await session.get(Follow, (follower, followee))
    return found is not None


async def add_follow(
    session: AsyncSession, tenant_id: uuid.UUID, follower: uuid.UUID, followee: uuid.UUID
) -> bool:
    if await is_following(session, follower, followee):
        return False
    session.add(Follow(tenant_id=tenant_id, follower_id=follower, followee_id=followee))
    return True


async def remove_follow(session: AsyncSession, follower: uuid.UUID, followee: uuid.UUID) -> bool:
    result = await session.execute(
        delete(Follow).where(Follow.follower_id == follower, Follow.followee_id == followee)
    )
    return bool(getattr(result, "rowcount", 0))


async def follow_page(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    followers: bool,
    cursor: str | None,
    limit: int,
) -> Sequence[Row[uuid.UUID, str, dt.datetime]]:
    """Followers (or followees) of `user_id`, newest first, keyset-paginated on (created_at, id)."""
    other = Follow.follower_id if followers else Follow.followee_id
    mine = Follow.followee_id if followers else Follow.follower_id
    stmt = (
        scoped(select(User.id, User.display_name, Follow.created_at), Follow, tenant_id)
        .join(User, User.id == other)
        .where(mine == user_id)
    )
    if cursor:
        when, last_id = decode_cursor(cursor)
        stmt = stmt.where(
            or_(Follow.created_at < when, and_(Follow.created_at == when, User.id < last_id))
        )
    stmt = stmt.order_by(Follow.created_at.desc(), User.id.desc()).limit(limit + 1)
    return (await session.execute(stmt)).all()
