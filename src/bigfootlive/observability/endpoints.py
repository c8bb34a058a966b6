from __future__ import annotations

import asyncio

import structlog
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from bigfootlive import __version__
from bigfootlive.deps import State
from bigfootlive.observability.metrics import REGISTRY
from bigfootlive.routing import JsonRoute
from bigfootlive.streaming.managed.runner import ready_status as media_server_status

log = structlog.get_logger(__name__)

router = APIRouter(tags=["observability"], route_class=JsonRoute)


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process is up and its event loop answers."""
    return {"status": "ok", "version": __version__}


@router.get("/ready", responses={503: {"description": "A dependency is unreachable"}})
async def ready(state: State) -> JSONResponse:
    """Readiness: the database and (when configured) Redis answer within two seconds, and the
    managed media server (MEDIA_SERVER_MODE=managed) answers on its HTTP port."""
    checks: dict[str, str] = {}

    async def database() -> None:
        async with state.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    for name, probe in (("database", database), ("cache", state.cache.ping)):
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
async def metrics(state: State) -> Response:
    try:  # queue depth lives in the broker: read it at scrape time
        await asyncio.wait_for(state.jobs.depth(), timeout=2)
    except Exception:
        log.warning("job_queue_depth_unavailable", exc_info=True)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
