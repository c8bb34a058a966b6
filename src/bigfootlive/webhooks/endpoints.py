from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from bigfootlive.authz.deps import require
from bigfootlive.authz.roles import Permission
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from bigfootlive.routing import JsonRoute
from bigfootlive.webhooks import service
from bigfootlive.webhooks.schemas import (
    DeliveryOut,
    EndpointCreate,
    EndpointOut,
    EndpointUpdate,
    EndpointWithSecret,
)

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"], route_class=JsonRoute)

WebhookAdmin = Annotated[AuthSubject, Depends(require(Permission.WEBHOOKS_MANAGE))]


@router.post("/endpoints", status_code=status.HTTP_201_CREATED)
async def create_endpoint(
    body: EndpointCreate, subject: WebhookAdmin, state: State, session: DbSession, meta: Meta
) -> EndpointWithSecret:
    return await service.create_endpoint(state, session, meta, subject, body)


@router.get("/endpoints")
async def list_endpoints(subject: WebhookAdmin, session: ReadSession) -> list[EndpointOut]:
    return await service.list_endpoints(session, subject)


@router.get("/endpoints/{endpoint_id}")
async def get_endpoint(
    endpoint_id: uuid.UUID, subject: WebhookAdmin, session: ReadSession
) -> EndpointOut:
    return await service.get_endpoint(session, subject, endpoint_id)


@router.patch("/endpoints/{endpoint_id}")
async def update_endpoint(
    endpoint_id: uuid.UUID,
    body: EndpointUpdate,
    subject: WebhookAdmin,
    state: State,
    session: DbSession,
    meta: Meta,
) -> EndpointOut:
    return await service.update_endpoint(state, session, meta, subject, endpoint_id, body)


@router.delete("/endpoints/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_endpoint(
    endpoint_id: uuid.UUID, subject: WebhookAdmin, session: DbSession, meta: Meta
) -> Response:
    await service.delete_endpoint(session, meta, subject, endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/endpoints/{endpoint_id}/rotate-secret")
async def rotate_secret(
    endpoint_id: uuid.UUID, subject: WebhookAdmin, state: State, session: DbSession, meta: Meta
) -> EndpointWithSecret:
    return await service.rotate_secret(state, session, meta, subject, endpoint_id)


@router.get("/endpoints/{endpoint_id}/deliveries")
async def list_deliveries(
    endpoint_id: uuid.UUID,
    subject: WebhookAdmin,
    session: ReadSession,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[DeliveryOut]:
    items, next_cursor = await service.list_deliveries(
        session, subject, endpoint_id, cursor=cursor, limit=limit
    )
    return Page[DeliveryOut](items=items, next_cursor=next_cursor)


@router.post("/deliveries/{delivery_id}/redeliver", status_code=status.HTTP_202_ACCEPTED)
async def redeliver(
    delivery_id: uuid.UUID, subject: WebhookAdmin, session: DbSession, meta: Meta
) -> DeliveryOut:
    return await service.redeliver(session, meta, subject, delivery_id)
