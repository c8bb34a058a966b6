from __future__ import annotations

import asyncio
import datetime as dt

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select, text

from bigfootlive import __version__
from bigfootlive.authz.scoping import platform_scope
from bigfootlive.composition import AppState
from bigfootlive.config import Settings
from bigfootlive.db import utcnow
from bigfootlive.deps import State
from bigfootlive.errors import NotFound, Unauthorized
from bigfootlive.kit.crypto import constant_time_equals
from bigfootlive.models import DeadJob, Event, EventContainer, JobOutbox, WebhookDelivery
from bigfootlive.observability import metrics as gauges
from bigfootlive.observability.metrics import REGISTRY
from bigfootlive.routing import JsonRoute
from bigfootlive.streaming.managed.runner import ready_status as media_server_status

log = structlog.get_logger(__name__)
# Every state an event container row may be in, so each series exists (at 0) from the start.
CONTAINER_STATES = ("starting", "running", "crashed", "stopping", "stopped")

router = APIRouter(tags=["observability"], route_class=JsonRoute)


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process is up and its event loop answers."""
    return {"status": "ok", "version": __version__}


@router.get("/ready", responses={503: {"description": "A dependency is unreachable"}})
async def ready(state: State) -> JSONResponse:
    """Readiness: the database, its read replica and Redis (when configured) answer within two
    seconds, and the managed media server (MEDIA_SERVER_MODE=managed) answers on its HTTP port."""
    checks: dict[str, str] = {}

    async def database() -> None:
        async with state.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def replica() -> None:
        async with state.db.read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    probes = [("database", database), ("cache", state.cache.ping)]
    if state.db.read_engine is not state.db.engine:  # DATABASE_READ_URL: the read replica
        probes.append(("database_replica", replica))
    for name, probe in probes:
        try:
            await asyncio.wait_for(probe(), timeout=2)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"error: {type(exc).__name__}"
    media_check, media = await media_server_status(state.settings)
    if media_check is not None:
        checks["media_server"] = media_check
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ok else "unavailable", "checks": checks, "media_server": media},
        status_code=200 if ok else 503,
    )


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request, state: State) -> Response:
    """Prometheus metrics. With METRICS_TOKEN only `Authorization: Bearer <token>` is answered;
    with METRICS_PORT they are served on that port instead (not here); in production one of
    the two is required, else /metrics is not served."""
    settings = state.settings
    if settings.metrics_port is not None or (
        settings.node_env == "production" and not metrics_token(settings)
    ):
        raise NotFound("Not found")
    if not authorized(settings, request.headers.get("authorization")):
        raise Unauthorized("A valid metrics token is required")
    return Response(await render_metrics(state), media_type=CONTENT_TYPE_LATEST)


def metrics_token(settings: Settings) -> str:
    return settings.metrics_token.get_secret_value() if settings.metrics_token else ""


def authorized(settings: Settings, authorization: str | None) -> bool:
    token = metrics_token(settings)
    if not token:
        return True
    scheme, _, presented = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and constant_time_equals(presented.strip(), token)


async def render_metrics(state: AppState) -> bytes:
    """The registry's text, after reading the figures that live elsewhere (broker, database)."""
    try:  # queue depth lives in the broker: read it at scrape time
        await asyncio.wait_for(state.jobs.depth(), timeout=2)
    except Exception:
        log.warning("job_queue_depth_unavailable", exc_info=True)
    try:
        await asyncio.wait_for(collect_platform(state), timeout=2)
    except Exception:
        log.warning("platform_metrics_unavailable", exc_info=True)
    return generate_latest(REGISTRY)


def _age(oldest: dt.datetime | None, now: dt.datetime) -> float:
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.UTC)
    return max(0.0, (now - oldest).total_seconds())


async def collect_platform(state: AppState) -> None:
    """Platform-wide gauges, from the database (the same whichever process is scraped): every
    tenant's rows, counted, never labelled by tenant (row-level security's platform scope)."""
    with platform_scope("metrics scrape"):
        await _collect_platform(state)


async def _collect_platform(state: AppState) -> None:
    now = utcnow()
    async with state.db.transaction() as session:
        # unscoped: platform metrics count every tenant's rows, and label none of them
        live = await session.execute(
            select(Event.status, func.count())
            .where(Event.status.in_(("live", "reconnecting")))
            .group_by(Event.status)
        )
        by_status = {str(r[0]): int(r[1]) for r in live.all()}
        for status in ("live", "reconnecting"):
            gauges.LIVE_EVENTS.labels(status).set(by_status.get(status, 0))
        # unscoped: platform metrics count every tenant's rows, and label none of them
        publishers = await session.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.status == "live", Event.publisher_id.is_not(None))
        )
        gauges.PUBLISHERS.set(publishers or 0)
        # unscoped: platform metrics count every tenant's rows, and label none of them
        containers = await session.execute(
            select(EventContainer.state, func.count()).group_by(EventContainer.state)
        )
        by_state = {str(r[0]): int(r[1]) for r in containers.all()}
        for container_state in sorted({*CONTAINER_STATES, *by_state}):
            gauges.CONTAINERS.labels(container_state).set(by_state.get(container_state, 0))
        gauges.DEAD_LETTERS.set(
            await session.scalar(select(func.count()).select_from(DeadJob)) or 0
        )
        pending, oldest = (
            await session.execute(select(func.count(), func.min(JobOutbox.created_at)))
        ).one()
        gauges.OUTBOX_PENDING.set(pending or 0)
        gauges.JOB_QUEUE_AGE.set(_age(oldest, now))
        # unscoped: platform metrics count every tenant's rows, and label none of them
        failed = await session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.status == "failed")
        )
        gauges.WEBHOOK_DELIVERIES_FAILED.set(failed or 0)
