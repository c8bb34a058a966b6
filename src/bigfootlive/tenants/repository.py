from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Row, Select, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bigfootlive.authz.scoping import scoped
from bigfootlive.kit.pagination import paginate
from bigfootlive.models import Tenant, TenantDomain, User


async def get_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant | None:
    return await session.get(Tenant, tenant_id)


async def get_tenant_by_slug(session: AsyncSession, slug: str) -> Tenant | None:
    return (
        await session.execute(select(Tenant).where(Tenant.slug == slug.lower()))
    ).scalar_one_or_none()


async def get_tenant_by_domain(session: AsyncSession, domain: str) -> Tenant | None:
    return (
        await session.execute(
            select(Tenant)
            .join(TenantDomain, TenantDomain.tenant_id == Tenant.id)
            .where(TenantDomain.domain == domain.lower(), TenantDomain.verified.is_(True))
        )
    ).scalar_one_or_none()


async def tenant_domains(session: AsyncSession, tenant_id: uuid.UUID) -> list[str]:
    rows = await session.execute(
        scoped(select(TenantDomain.domain), TenantDomain, tenant_id).order_by(TenantDomain.domain)
    )
    return list(rows.scalars())


# What the member list shows of each user (`TenantUserOut`), read as plain rows.
USER_LIST_COLUMNS = (
    User.id,
    User.email,
    User.display_name,
    User.role,
    User.is_active,
    User.email_verified_at,
    User.created_at,
    User.last_login_at,
)

UserListRow = Row[
    uuid.UUID, str, str, str, bool, dt.datetime | None, dt.datetime, dt.datetime | None
]


async def list_users(
    conn: AsyncSession | AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    query: str | None,
    cursor: str | None,
    limit: int,
) -> Sequence[UserListRow]:
    """A page of the tenant's members (`limit + 1` rows, see `kit.pagination`), as Core rows
    with the columns of `USER_LIST_COLUMNS`: no ORM objects to build for a list."""
    if not query and not cursor:  # the common request: its statement is built once per limit
        return (await conn.execute(_first_page(limit), {"tenant_id": tenant_id})).all()
    stmt = scoped(select(*USER_LIST_COLUMNS), User, tenant_id)
    if query:
        pattern = f"%{query.lower().replace('%', '').replace('_', '')}%"
        stmt = stmt.where(
            or_(func.lower(User.email).like(pattern), func.lower(User.display_name).like(pattern))
        )
    stmt = paginate(stmt, User.created_at, User.id, cursor=cursor, limit=limit)
    return (await conn.execute(stmt)).all()


@functools.cache
def _first_page(limit: int) -> Select[*tuple[Any, ...]]:
    # The tenant is a bound parameter, given at execution (building the statement is a third
    # of the query's cost in Python).
    tenant = cast(uuid.UUID, bindparam("tenant_id", type_=User.__table__.c.tenant_id.type))
    stmt = scoped(select(*USER_LIST_COLUMNS), User, tenant)
    return paginate(stmt, User.created_at, User.id, cursor=None, limit=limit)


async def count_admins(session: AsyncSession, tenant_id: uuid.UUID) -> int:
    stmt = scoped(select(func.count()).select_from(User), User, tenant_id).where(
        User.role == "admin", User.is_active.is_(True)
    )
    return int((await session.execute(stmt)).scalar_one())
