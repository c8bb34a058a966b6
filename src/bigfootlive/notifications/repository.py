from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.authz.scoping import scoped
from bigfootlive.models import Follow, NotificationPreference, User


async def get_preferences(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> NotificationPreference | None:
    stmt = scoped(select(NotificationPreference), NotificationPreference, tenant_id)
    return (await session.execute(stmt.where(NotificationPreference.user_id == user_id))).scalar()


def has_followers(
    tenant_id: ColumnElement[uuid.UUID], owner_id: ColumnElement[uuid.UUID]
) -> Exists:
    """SQL `EXISTS`: someone follows the owner (columns of the enclosing statement), so the
    go-live fan-out has an audience (the job itself picks the active ones)."""
    stmt = scoped(select(Follow.follower_id), Follow, tenant_id)
    return stmt.where(Follow.followee_id == owner_id).exists()


async def live_audience(
    session: AsyncSession, tenant_id: uuid.UUID, owner_id: uuid.UUID
) -> Sequence[tuple[uuid.UUID, str, str, bool, bool]]:
    """Active followers of `owner_id`: (id, email, display name, wants email, wants realtime)."""
    stmt = scoped(
        select(
            User.id,
            User.email,
            User.display_name,
            NotificationPreference.email_event_live,
            NotificationPreference.realtime_event_live,
        )
        .join(Follow, Follow.follower_id == User.id)
        .outerjoin(NotificationPreference, NotificationPreference.user_id == User.id),
        Follow,
        tenant_id,
    ).where(Follow.followee_id == owner_id, User.is_active, User.tenant_id == tenant_id)
    rows = (await session.execute(stmt)).all()
    return [(r[0], r[1], r[2], r[3] is not False, r[4] is not False) for r in rows]
