from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import structlog

from bigfootlive.analytics import repository as repo
from bigfootlive.analytics import service
from bigfootlive.analytics.ingest import APPLY_ROLLUP_TASK
from bigfootlive.analytics.service import FINALIZE_EVENT_TASK
from bigfootlive.composition import AppState
from bigfootlive.jobs import idempotency
from bigfootlive.jobs.registry import JobContext, Priority, task

log = structlog.get_logger(__name__)


def _parse(rows: list[dict[str, Any]], *times: str) -> list[dict[str, Any]]:
    out = []
    ids: dict[str, uuid.UUID] = {}  # a flush's rows are of a few events: each id parsed once
    for row in rows:
        parsed = dict(row)
        for name in ("event_id", "tenant_id"):
            raw = row[name]
            value = ids.get(raw)
            if value is None:
                value = ids[raw] = uuid.UUID(raw)
            parsed[name] = value
        for name in times:
            parsed[name] = dt.datetime.fromisoformat(row[name])
        out.append(parsed)
    return out


@task(APPLY_ROLLUP_TASK, priority=Priority.DEFAULT)
async def apply_rollup(
    ctx: JobContext[AppState],
    *,
    batch: str,
    minutes: list[dict[str, Any]],
    viewers: list[dict[str, Any]],
) -> None:
    """Add one flush of beacon sums to the per-minute roll-ups, exactly once per batch."""
    async with ctx.state.db.transaction() as session:
        if not await idempotency.first_time(session, f"analytics:batch:{batch}"):
            log.info("duplicate_rollup_skipped", batch=batch)
            return
        await repo.add_minutes(session, _parse(minutes, "minute"))
        await repo.add_viewers(session, _parse(viewers, "first_seen_at"))


@task(FINALIZE_EVENT_TASK, priority=Priority.LOW)
async def finalize_event(ctx: JobContext[AppState], *, event_id: str) -> None:
    """After an event ends: write its summary (idempotent: recomputed from the roll-ups)."""
    await service.finalize(ctx.state, uuid.UUID(event_id))
