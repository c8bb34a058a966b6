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


# The member list as the API gives it (`TenantUserOut`'s fields, in order): each row zips
# with `USER_PAGE_FIELDS` into the response's item, with nothing to convert.
USER_PAGE_COLUMNS = (
    User.id,
    User.email,
    User.display_name,
    User.role,
    User.is_active,
    User.email_verified_at.is_not(None).label("email_verified"),
    User.created_at,
    User.last_login_at,
)
USER_PAGE_FIELDS = tuple(column.key for column in USER_PAGE_COLUMNS)


async def list_users(
    conn: AsyncSession | AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    query: str | None,
    cursor: str | None,
    limit: int,
    role: str | None = None,
    active: bool | None = None,
    columns: tuple[Any, ...] = USER_LIST_COLUMNS,
) -> Sequence[Any]:
    """A page of the tenant's members (`limit + 1` rows, see `kit.pagination`), as Core rows
    with `columns` (`USER_LIST_COLUMNS`, or `USER_PAGE_COLUMNS` for the API): no ORM objects
    to build for a list. `role` and `active` filter."""
    if not query and not cursor and role is None and active is None:
        # the common request: its statement is built once per limit
        rows: Sequence[Any] = (
            await conn.execute(first_page(limit, columns), {"tenant_id": tenant_id})
        ).all()
        return rows
    stmt = scoped(select(*columns), User, tenant_id)
    if query:
        pattern = f"%{query.lower().replace('%', '').replace('_', '')}%"
        stmt = stmt.where(
            or_(func.lower(User.email).like(pattern), func.lower(User.display_name).like(pattern))
        )
    if role is not None:
        stmt = stmt.where(User.role == role)
    if active is not None:
        stmt = stmt.where(User.is_active.is_(active))
    stmt = paginate(stmt, User.created_at, User.id, cursor=cursor, limit=limit)
    return (await conn.execute(stmt)).all()


@functools.cache
def first_page(limit: int, columns: tuple[Any, ...] = USER_LIST_COLUMNS) -> Select[Any]:
    """The first page's statement, built once per limit; the tenant is the bound parameter
    `tenant_id`, given at execution (building the statement is a third of the query's cost in
    Python)."""
    tenant = cast(uuid.UUID, bindparam("tenant_id", type_=User.__table__.c.tenant_id.type))
    stmt = scoped(select(*columns), User, tenant)
    return paginate(stmt, User.created_at, User.id, cursor=None, limit=limit)


async def count_admins(session: AsyncSession, tenant_id: uuid.UUID) -> int:
    stmt = scoped(select(func.count()).select_from(User), User, tenant_id).where(
        User.role == "admin", User.is_active.is_(True)
    )
    return int((await session.execute(stmt)).scalar_one())
