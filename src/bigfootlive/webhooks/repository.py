from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.authz.scoping import scoped
from bigfootlive.kit.pagination import paginate
from bigfootlive.models import WebhookDelivery, WebhookEndpoint


async def get_endpoint(
    session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookEndpoint | None:
    stmt = scoped(select(WebhookEndpoint), WebhookEndpoint, tenant_id)
    return (await session.execute(stmt.where(WebhookEndpoint.id == endpoint_id))).scalar()


async def list_endpoints(session: AsyncSession, tenant_id: uuid.UUID) -> Sequence[WebhookEndpoint]:
    stmt = scoped(select(WebhookEndpoint), WebhookEndpoint, tenant_id)
    return (await session.execute(stmt.order_by(WebhookEndpoint.created_at))).scalars().all()


async def active_endpoints(
    session: AsyncSession, tenant_id: uuid.UUID
) -> Sequence[WebhookEndpoint]:
    stmt = scoped(select(WebhookEndpoint), WebhookEndpoint, tenant_id)
    return (await session.execute(stmt.where(WebhookEndpoint.is_active))).scalars().all()


def has_active_endpoint(tenant_id: ColumnElement[uuid.UUID]) -> Exists:
    """SQL `EXISTS`: the tenant (a column of the enclosing statement) has an active endpoint,
    so `service.emit` may have work: for a statement that changes a row only when nothing
    else needs writing in its transaction."""
    stmt = scoped(select(WebhookEndpoint.id), WebhookEndpoint, tenant_id)
    return stmt.where(WebhookEndpoint.is_active).exists()


async def get_delivery(
    session: AsyncSession, tenant_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery | None:
    stmt = scoped(select(WebhookDelivery), WebhookDelivery, tenant_id)
    return (await session.execute(stmt.where(WebhookDelivery.id == delivery_id))).scalar()


async def delivery_page(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    cursor: str | None,
    limit: int,
) -> Sequence[WebhookDelivery]:
    stmt = scoped(select(WebhookDelivery), WebhookDelivery, tenant_id).where(
        WebhookDelivery.endpoint_id == endpoint_id
    )
    stmt = paginate(
        stmt, WebhookDelivery.created_at, WebhookDelivery.id, cursor=cursor, limit=limit
    )
    return (await session.execute(stmt)).scalars().all()
