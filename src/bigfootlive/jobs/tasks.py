"""Housekeeping for the job machinery itself."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete

from bigfootlive.composition import AppState
from bigfootlive.db import utcnow
from bigfootlive.jobs import idempotency
from bigfootlive.jobs.registry import JobContext, Priority, cron, task
from bigfootlive.models import DeadJob

KEY_RETENTION = dt.timedelta(days=7)
DEAD_RETENTION = dt.timedelta(days=30)


@task(priority=Priority.LOW)
async def purge_job_records(ctx: JobContext[AppState]) -> None:
    """Forget idempotency keys after a week and dead letters after a month."""
    async with ctx.state.db.transaction() as session:
        await idempotency.purge(session, utcnow() - KEY_RETENTION)
        await session.execute(delete(DeadJob).where(DeadJob.failed_at < utcnow() - DEAD_RETENTION))


cron("17 3 * * *", purge_job_records)
