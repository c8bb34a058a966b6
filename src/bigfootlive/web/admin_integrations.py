"""The tenant admin console's integrations (issue 16): API keys (create, the secret shown once,
revoke) and webhooks (endpoints, their event types, the delivery log, redeliver, delete).

The same services and permissions as `/api/api-keys` and `/api/webhooks` (tenant admins);
another tenant's key, endpoint or delivery answers 404, as in the API. Revoking a key and
deleting an endpoint ask for a confirmation first (the API asks for no step-up for either)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from pydantic import ValidationError
from starlette.responses import Response

from bigfootlive.apikeys import service as apikeys
from bigfootlive.apikeys.schemas import ApiKeyCreate, KeyScope
from bigfootlive.authz.roles import Permission
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.errors import BigfootError, NotFound
from bigfootlive.models import ApiKey
from bigfootlive.routing import JsonRoute
from bigfootlive.web.guard import console_admin
from bigfootlive.web.render import page, redirect
from bigfootlive.web.security import check_csrf
from bigfootlive.web.session import BrowserSubject
from bigfootlive.webhooks import service as webhooks
from bigfootlive.webhooks.schemas import EndpointCreate, EndpointUpdate, WebhookEventType

PAGE_SIZE = 25

router = APIRouter(
    prefix="/admin",
    tags=["web"],
    route_class=JsonRoute,
    include_in_schema=False,
    dependencies=[Depends(check_csrf)],
)


# ---------------------------------------------------------------- API keys


async def _own_key(session: ReadSession, admin: AuthSubject, key_id: uuid.UUID) -> ApiKey:
    for key in await apikeys.list_keys(session, admin, KeyScope.TENANT):
        if key.id == key_id:
            return key
    raise NotFound("No such API key", code="api_key_not_found")


async def _keys_page(
    request: Request,
    session: ReadSession,
    admin: AuthSubject,
    extra: Mapping[str, object] | None = None,
    status: int = 200,
) -> Response:
    keys = [apikeys.key_out(k) for k in await apikeys.list_keys(session, admin, KeyScope.TENANT)]
    return page(request, "admin/api_keys.html", {"keys": keys, **(extra or {})}, status)


@router.get("/api-keys")
async def api_keys(request: Request, subject: BrowserSubject, session: ReadSession) -> Response:
    admin = console_admin(subject, Permission.API_KEYS_MANAGE)
    return await _keys_page(request, session, admin)


@router.post("/api-keys")
async def api_key_create(
    request: Request,
    subject: BrowserSubject,
    session: DbSession,
    meta: Meta,
    name: Annotated[str, Form(max_length=100)],
) -> Response:
    """Creates the key and shows its secret on this answer only (never stored readable)."""
    admin = console_admin(subject, Permission.API_KEYS_MANAGE)
    try:
        body = ApiKeyCreate(name=name.strip())
    except ValidationError:
        return await _keys_page(request, session, admin, {"error": "Give the key a name."}, 422)
    key, secret = await apikeys.create_key(session, meta, admin, body)
    created = {"created": apikeys.key_out(key), "secret": secret}
    return await _keys_page(request, session, admin, created, 201)


@router.get("/api-keys/{key_id}/revoke")
async def api_key_revoke_confirm(
    request: Request, key_id: uuid.UUID, subject: BrowserSubject, session: ReadSession
) -> Response:
    admin = console_admin(subject, Permission.API_KEYS_MANAGE)
    key = apikeys.key_out(await _own_key(session, admin, key_id))
    return page(request, "admin/api_key_revoke.html", {"key": key})


@router.post("/api-keys/{key_id}/revoke")
async def api_key_revoke(
    request: Request,
    key_id: uuid.UUID,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> Response:
    admin = console_admin(subject, Permission.API_KEYS_MANAGE)
    await apikeys.revoke_key(state, session, meta, admin, key_id)
    return redirect(request, "/admin/api-keys")


# ---------------------------------------------------------------- webhooks


async def _hooks_page(
    request: Request,
    session: ReadSession,
    admin: AuthSubject,
    extra: Mapping[str, object] | None = None,
    status: int = 200,
) -> Response:
    context = {
        "endpoints": await webhooks.list_endpoints(session, admin),
        "event_types": [t.value for t in WebhookEventType],
        "form": {},
        **(extra or {}),
    }
    return page(request, "admin/webhooks.html", context, status)


@router.get("/webhooks")
async def webhook_list(request: Request, subject: BrowserSubject, session: ReadSession) -> Response:
    admin = console_admin(subject, Permission.WEBHOOKS_MANAGE)
    return await _hooks_page(request, session, admin)


@router.post("/webhooks")
async def webhook_create(
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    url: Annotated[str, Form(max_length=2000)],
    event_types: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies defaults)
    description: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    admin = console_admin(subject, Permission.WEBHOOKS_MANAGE)
    form = {"url": url, "description": description, "event_types": event_types}
    try:
        body = EndpointCreate(
            url=url.strip(),
            event_types=[WebhookEventType(t) for t in event_types],
            description=description,
        )
    except (ValidationError, ValueError):
        error = "Give an http(s) URL and choose at least one event type."
        return await _hooks_page(request, session, admin, {"form": form, "error": error}, 422)
    try:
        created = await webhooks.create_endpoint(state, session, meta, admin, body)
    except BigfootError as exc:
        await session.rollback()
        context = {"form": form, "error": exc.message}
        return await _hooks_page(request, session, admin, context, exc.status_code)
    return await _hooks_page(request, session, admin, {"created": created}, 201)


@router.get("/webhooks/{endpoint_id}")
async def webhook_page(
    request: Request,
    endpoint_id: uuid.UUID,
    subject: BrowserSubject,
    session: ReadSession,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    admin = console_admin(subject, Permission.WEBHOOKS_MANAGE)
    endpoint = await webhooks.get_endpoint(session, admin, endpoint_id)
    items, next_cursor = await webhooks.list_deliveries(
        session, admin, endpoint_id, cursor=cursor, limit=PAGE_SIZE
    )
    next_url = None
    if next_cursor is not None:
        next_url = f"/admin/webhooks/{endpoint_id}?{urlencode({'cursor': next_cursor})}"
    context = {
        "endpoint": endpoint,
        "deliveries": items,
        "next_url": next_url,
        "event_types": [t.value for t in WebhookEventType],
    }
    return page(request, "admin/webhook.html", context)


@router.post("/webhooks/{endpoint_id}")
async def webhook_edit(
    request: Request,
    endpoint_id: uuid.UUID,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    url: Annotated[str, Form(max_length=2000)],
    event_types: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies defaults)
    description: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Change the endpoint's URL, description and event types (`PATCH` of the API)."""
    admin = console_admin(subject, Permission.WEBHOOKS_MANAGE)
    endpoint = await webhooks.get_endpoint(session, admin, endpoint_id)
    error = None
    try:
        patch = EndpointUpdate(
            url=url.strip(),
            event_types=[WebhookEventType(t) for t in event_types],
            description=description,
        )
        await webhooks.update_endpoint(state, session, meta, admin, endpoint_id, patch)
    except (ValidationError, ValueError):
        error = "Give an http(s) URL and choose at least one event type."
    except BigfootError as exc:
        if exc.status_code == 404:
            raise
        await session.rollback()
        error = exc.message
    if error is not None:
        context = {
            "endpoint": endpoint,
            "deliveries": [],
            "next_url": None,
            "event_types": [t.value for t in WebhookEventType],
            "edit_error": error,
        }
        return page(request, "admin/webhook.html", context, 422)
    return redirect(request, f"/admin/webhooks/{endpoint_id}?saved=1")


@router.post("/webhooks/{endpoint_id}/active")
async def webhook_toggle(
    request: Request,
    endpoint_id: uuid.UUID,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    active: Annotated[bool, Form()],
) -> Response:
    admin = console_admin(subject, Permission.WEBHOOKS_MANAGE)
    patch = EndpointUpdate(is_active=active)
    await webhooks.update_endpoint(state, session, meta, admin, endpoint_id, patch)
    return redirect(request, f"/admin/webhooks/{endpoint_id}")


@router.post("/webhooks/deliveries/{delivery_id}/redeliver")
async def webhook_redeliver(
    request: Request,
    delivery_id: uuid.UUID,
    subject: BrowserSubject,
    session: DbSession,
    meta: Meta,
) -> Response:
    admin = console_admin(subject, Permission.WEBHOOKS_MANAGE)
    delivery = await webhooks.redeliver(session, meta, admin, delivery_id)
    return redirect(request, f"/admin/webhooks/{delivery.endpoint_id}?redelivered=1")


@router.get("/webhooks/{endpoint_id}/delete")
async def webhook_delete_confirm(
    request: Request, endpoint_id: uuid.UUID, subject: BrowserSubject, session: ReadSession
) -> Response:
    admin = console_admin(subject, Permission.WEBHOOKS_MANAGE)
    endpoint = await webhooks.get_endpoint(session, admin, endpoint_id)
    return page(request, "admin/webhook_delete.html", {"endpoint": endpoint})


@router.post("/webhooks/{endpoint_id}/delete")
async def webhook_delete(
    request: Request,
    endpoint_id: uuid.UUID,
    subject: BrowserSubject,
    session: DbSession,
    meta: Meta,
) -> Response:
    admin = console_admin(subject, Permission.WEBHOOKS_MANAGE)
    await webhooks.delete_endpoint(session, meta, admin, endpoint_id)
    return redirect(request, "/admin/webhooks")
