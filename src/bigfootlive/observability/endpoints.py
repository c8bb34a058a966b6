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

log = structlog.get_logger(__name__)

router = APIRouter(tags=["observability"], route_class=JsonRoute)


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process is up and its event loop answers."""
    return {"status": "ok", "version": __version__}


@router.get("/ready", responses={503: {"description": "A dependency is unreachable"}})
async def ready(state: State) -> JSONResponse:
    """Readiness: the database and (when configured) Redis answer within two seconds."""
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
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ok else "unavailable", "checks": checks},
        status_code=200 if ok else 503,
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(state: State) -> Response:
    try:  # queue depth lives in the broker: read it at scrape time
        await asyncio.wait_for(state.jobs.depth(), timeout=2)
    except Exception:
        log.warning("job_queue_depth_unavailable", exc_info=True)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
