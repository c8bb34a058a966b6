"""Outbound webhooks: tenants register endpoints; domain services `emit` events, which are
delivered through the job queue, signed, retried with back-off and logged per attempt."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.errors import BadRequest, NotFound, Unprocessable
from bigfootlive.jobs import enqueue_after_commit
from bigfootlive.kit import outbound
from bigfootlive.kit.pagination import encode_cursor
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import WebhookDelivery, WebhookEndpoint
from bigfootlive.observability import metrics
from bigfootlive.state import Infrastructure
from bigfootlive.webhooks import repository as repo
from bigfootlive.webhooks import signing
from bigfootlive.webhooks.schemas import (
    DeliveryOut,
    EndpointCreate,
    EndpointOut,
    EndpointUpdate,
    EndpointWithSecret,
    WebhookEventType,
)

log = structlog.get_logger(__name__)


# The job that tasks.py registers under this name (services never import tasks.py).
DELIVER_WEBHOOK_TASK = "webhooks.tasks.deliver_webhook"


class DeliveryFailed(Exception):
    """The receiver did not answer 2xx; the job is retried with back-off."""


def _context(endpoint_id: uuid.UUID) -> str:
    return f"webhook:{endpoint_id}"


async def _check_url(state: Infrastructure, url: str) -> str:
    parts = urlsplit(url)
    allowed = ("https",) if state.settings.node_env == "production" else ("https", "http")
    if parts.scheme not in allowed or not parts.hostname:
        raise BadRequest(
            "The URL must be an absolute " + " or ".join(allowed) + " URL",
            code="invalid_webhook_url",
        )
    try:
        await _resolve(state, url)
    except outbound.OutboundUrlRefused as exc:
        code = {
            "unresolvable": "webhook_url_unresolvable",
            "not_public": "webhook_url_not_allowed",
        }.get(exc.reason, "invalid_webhook_url")
        raise Unprocessable(str(exc), code=code) from exc
    return url


async def _resolve(state: Infrastructure, url: str) -> list[outbound.IPAddress]:
    """The public addresses of the URL's host ([] when private targets are allowed)."""
    return await outbound.check_outbound_url(
        url, allow_private=state.settings.webhook_allow_private_networks
    )


def endpoint_out(row: WebhookEndpoint) -> EndpointOut:
    return EndpointOut(
        id=row.id,
        url=row.url,
        description=row.description,
        event_types=[WebhookEventType(t) for t in row.event_types],
        is_active=row.is_active,
        created_at=row.created_at,
    )


async def _endpoint(
    session: AsyncSession, subject: AuthSubject, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    row = await repo.get_endpoint(session, subject.tenant_id, endpoint_id)
    if row is None:
        raise NotFound("No such webhook endpoint", code="webhook_endpoint_not_found")
    return row


async def create_endpoint(
    state: Infrastructure,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    body: EndpointCreate,
) -> EndpointWithSecret:
    secret = signing.new_secret()
    row = WebhookEndpoint(
        id=uuid.uuid4(),
        tenant_id=subject.tenant_id,
        url=await _check_url(state, body.url),
        description=body.description,
        event_types=sorted({t.value for t in body.event_types}),
        secret_encrypted="",
    )
    row.secret_encrypted = state.secrets.encrypt(secret, context=_context(row.id))
    session.add(row)
    await session.flush()
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.WEBHOOKS_ENDPOINT_CREATE,
        tenant_id=subject.tenant_id,
        target_type="webhook_endpoint",
        target_id=row.id,
        details={"url": row.url, "event_types": row.event_types},
    )
    return EndpointWithSecret(**endpoint_out(row).model_dump(), secret=secret)


async def list_endpoints(session: AsyncSession, subject: AuthSubject) -> list[EndpointOut]:
    return [endpoint_out(r) for r in await repo.list_endpoints(session, subject.tenant_id)]


async def get_endpoint(
    session: AsyncSession, subject: AuthSubject, endpoint_id: uuid.UUID
) -> EndpointOut:
    return endpoint_out(await _endpoint(session, subject, endpoint_id))


async def update_endpoint(
    state: Infrastructure,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    endpoint_id: uuid.UUID,
    body: EndpointUpdate,
) -> EndpointOut:
    row = await _endpoint(session, subject, endpoint_id)
    changes = body.model_dump(exclude_unset=True, exclude_none=True, mode="json")
    if "url" in changes:
        row.url = await _check_url(state, changes["url"])
    if "event_types" in changes:
        row.event_types = sorted(set(changes["event_types"]))
    if "description" in changes:
        row.description = changes["description"]
    if "is_active" in changes:
        row.is_active = changes["is_active"]
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.WEBHOOKS_ENDPOINT_UPDATE,
        tenant_id=subject.tenant_id,
        target_type="webhook_endpoint",
        target_id=row.id,
        details={"fields": sorted(changes)},
    )
    await session.flush()
    return endpoint_out(row)


async def delete_endpoint(
    session: AsyncSession, meta: RequestMeta, subject: AuthSubject, endpoint_id: uuid.UUID
) -> None:
    row = await _endpoint(session, subject, endpoint_id)
    await session.delete(row)
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.WEBHOOKS_ENDPOINT_DELETE,
        tenant_id=subject.tenant_id,
        target_type="webhook_endpoint",
        target_id=endpoint_id,
    )


async def rotate_secret(
    state: Infrastructure,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    endpoint_id: uuid.UUID,
) -> EndpointWithSecret:
    row = await _endpoint(session, subject, endpoint_id)
    secret = signing.new_secret()
    row.secret_encrypted = state.secrets.encrypt(secret, context=_context(row.id))
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.WEBHOOKS_SECRET_ROTATE,
        tenant_id=subject.tenant_id,
        target_type="webhook_endpoint",
        target_id=row.id,
    )
    return EndpointWithSecret(**endpoint_out(row).model_dump(), secret=secret)


def delivery_out(row: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut.model_validate(row, from_attributes=True)


async def list_deliveries(
    session: AsyncSession,
    subject: AuthSubject,
    endpoint_id: uuid.UUID,
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[DeliveryOut], str | None]:
    await _endpoint(session, subject, endpoint_id)
    rows = await repo.delivery_page(
        session, subject.tenant_id, endpoint_id, cursor=cursor, limit=limit
    )
    items = [delivery_out(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit and items:
        next_cursor = encode_cursor(items[-1].created_at, items[-1].id)
    return items, next_cursor


async def redeliver(
    session: AsyncSession, meta: RequestMeta, subject: AuthSubject, delivery_id: uuid.UUID
) -> DeliveryOut:
    """Send a logged delivery again (same webhook-id, so receivers can still deduplicate)."""
    row = await repo.get_delivery(session, subject.tenant_id, delivery_id)
    if row is None:
        raise NotFound("No such delivery", code="webhook_delivery_not_found")
    row.status = "pending"
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.WEBHOOKS_REDELIVER,
        tenant_id=subject.tenant_id,
        target_type="webhook_delivery",
        target_id=row.id,
    )
    enqueue_after_commit(session, DELIVER_WEBHOOK_TASK, delivery_id=str(row.id), manual=True)
    await session.flush()
    return delivery_out(row)


async def emit(
    session: AsyncSession, tenant_id: uuid.UUID, event_type: str, payload: dict[str, Any]
) -> list[uuid.UUID]:
    """Queue `event_type` for every active endpoint of the tenant that subscribes to it.

    Runs in the caller's transaction: the delivery rows and the change that caused them commit
    together, and the jobs are sent only after that commit.
    """
    kind = WebhookEventType(event_type)
    created: list[uuid.UUID] = []
    envelope = {
        "type": kind.value,
        "timestamp": dt.datetime.now(dt.UTC).isoformat(),
        "data": payload,
    }
    for endpoint in await repo.active_endpoints(session, tenant_id):
        if kind.value not in endpoint.event_types:
            continue
        row = WebhookDelivery(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            endpoint_id=endpoint.id,
            message_id=f"msg_{uuid.uuid4().hex}",
            event_type=kind.value,
            payload=envelope,
        )
        session.add(row)
        created.append(row.id)
        enqueue_after_commit(session, DELIVER_WEBHOOK_TASK, delivery_id=str(row.id))
    return created


def encode_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


async def attempt_delivery(
    state: Infrastructure, delivery_id: uuid.UUID, *, last_attempt: bool
) -> bool:
    """One attempt. True when delivered (or nothing left to do); raises DeliveryFailed."""
    async with state.db.transaction() as session:
        row = await session.get(WebhookDelivery, delivery_id)
        endpoint = None if row is None else await session.get(WebhookEndpoint, row.endpoint_id)
        if row is None or endpoint is None:
            return True  # the endpoint was deleted since
        if row.status == "succeeded":
            return True  # a duplicate job: already delivered
        if not endpoint.is_active:
            row.status, row.last_error = "failed", "endpoint disabled"
            return True
        secret = state.secrets.decrypt(endpoint.secret_encrypted, context=_context(endpoint.id))
        url, body, message_id = endpoint.url, encode_body(row.payload), row.message_id
    headers = signing.headers(secret, message_id, int(time.time()), body)
    started = time.perf_counter()
    status: int | None = None
    error: str | None = None
    try:
        # Checked again now, and the connection pinned to the checked address: the host may
        # resolve to an internal address since the endpoint was saved (DNS rebinding).
        addresses = await _resolve(state, url)
        target: httpx.URL | str = url
        extensions: dict[str, str] = {}
        if addresses:
            target, host, extensions = outbound.pin(url, addresses[0])
            headers = {**headers, **host}
        async with httpx.AsyncClient(
            timeout=state.settings.webhook_timeout_seconds, follow_redirects=False
        ) as http:
            response = await http.post(target, content=body, headers=headers, extensions=extensions)
        status = response.status_code
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    except outbound.OutboundUrlRefused as exc:
        error = f"refused: {exc}"[:1000]
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:1000]
    elapsed = int((time.perf_counter() - started) * 1000)
    async with state.db.transaction() as session:
        row = await session.get(WebhookDelivery, delivery_id)
        if row is not None:
            row.attempts += 1
            row.last_status_code, row.last_error, row.last_duration_ms = status, error, elapsed
            if error is None:
                row.status, row.delivered_at = "succeeded", dt.datetime.now(dt.UTC)
            elif last_attempt:
                row.status = "failed"
    metrics.WEBHOOK_ATTEMPTS.labels("failed" if error else "succeeded").inc()
    if error is not None:
        log.info("webhook_delivery_failed", delivery_id=str(delivery_id), error=error)
        raise DeliveryFailed(error)
    return True
