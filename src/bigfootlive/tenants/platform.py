"""Tenants as the platform sees them: the list with member counts, creation and renaming, for
`/api/platform/tenants` and the platform console (activation is `service.set_active`). The
caller acts for the platform (every tenant's rows); each change is audited."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.errors import NotFound
from bigfootlive.kit.pagination import page_of, paginate
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import Tenant, User
from bigfootlive.tenants import service
from bigfootlive.tenants.schemas import (
    PlatformTenantCreate,
    PlatformTenantOut,
    PlatformTenantUpdate,
)


def not_found() -> NotFound:
    return NotFound("No such tenant", code="tenant_not_found")


async def _members(session: AsyncSession, tenant_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not tenant_ids:
        return {}
    # unscoped: member counts of many tenants, for the platform console and API only
    rows = await session.execute(
        select(User.tenant_id, func.count())
        .where(User.tenant_id.in_(tenant_ids))
        .group_by(User.tenant_id)
    )
    return {row[0]: int(row[1]) for row in rows.all()}


def _out(tenant: Tenant, members: int) -> PlatformTenantOut:
    return PlatformTenantOut(
        id=tenant.id,
        slug=tenant.slug,
        name=tenant.name,
        is_active=tenant.is_active,
        members=members,
        created_at=tenant.created_at,
    )


async def list_tenants(
    session: AsyncSession, *, query: str | None, cursor: str | None, limit: int
) -> tuple[list[PlatformTenantOut], str | None]:
    """A page of every tenant, newest first; `query` matches the slug or the name."""
    stmt = select(Tenant)
    if query:
        pattern = f"%{query.lower().replace('%', '').replace('_', '')}%"
        stmt = stmt.where(
            or_(func.lower(Tenant.slug).like(pattern), func.lower(Tenant.name).like(pattern))
        )
    rows = list(
        (
            await session.execute(
                paginate(stmt, Tenant.created_at, Tenant.id, cursor=cursor, limit=limit)
            )
        )
        .scalars()
        .all()
    )
    items, next_cursor = page_of(rows, limit)
    counts = await _members(session, [t.id for t in items])
    return [_out(t, counts.get(t.id, 0)) for t in items], next_cursor


async def get(session: AsyncSession, tenant_id: uuid.UUID) -> PlatformTenantOut:
    tenant = await service.get_tenant(session, tenant_id)
    if tenant is None:
        raise not_found()
    counts = await _members(session, [tenant.id])
    return _out(tenant, counts.get(tenant.id, 0))


async def create(
    session: AsyncSession, meta: RequestMeta, actor_id: uuid.UUID, body: PlatformTenantCreate
) -> PlatformTenantOut:
    """A new, active tenant with default settings (the same service as `tenant create`)."""
    tenant = await service.create_tenant(
        session, slug=body.slug.strip(), name=body.name.strip(), email_domains=body.email_domains
    )
    await AuditLog(session, meta, actor_id).record(
        AuditAction.TENANT_CREATE,
        tenant_id=tenant.id,
        target_type="tenant",
        target_id=tenant.id,
        details={"slug": tenant.slug},
    )
    await session.flush()
    return _out(tenant, 0)


async def rename(
    session: AsyncSession,
    meta: RequestMeta,
    actor_id: uuid.UUID,
    tenant_id: uuid.UUID,
    body: PlatformTenantUpdate,
) -> PlatformTenantOut:
    tenant = await service.get_tenant(session, tenant_id)
    if tenant is None:
        raise not_found()
    name = body.name.strip()
    if name and name != tenant.name:
        tenant.name = name
        await AuditLog(session, meta, actor_id).record(
            AuditAction.TENANT_SETTINGS_CHANGE,
            tenant_id=tenant.id,
            target_type="tenant",
            target_id=tenant.id,
            details={"changed": ["name"]},
        )
        await session.flush()
    return await get(session, tenant_id)
