"""Dead letters (list, retry, discard) and queue statistics, for platform admins."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.db import after_commit
from bigfootlive.errors import NotFound
from bigfootlive.jobs.queue import JobQueue
from bigfootlive.jobs.registry import TASKS
from bigfootlive.jobs.schemas import DeadJobOut, JobStats, QueueDepth, TaskCounts
from bigfootlive.kit.pagination import encode_cursor, paginate
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import DeadJob


def _out(row: DeadJob) -> DeadJobOut:
    return DeadJobOut(
        id=row.id,
        message_id=row.message_id,
        queue=row.queue,
        task=row.task,
        arguments=row.kwargs,
        attempts=row.attempts,
        error=row.error,
        failed_at=row.failed_at,
    )


async def list_dead(
    session: AsyncSession, *, task: str | None, cursor: str | None, limit: int
) -> tuple[list[DeadJobOut], str | None]:
    stmt = select(DeadJob)
    if task:
        stmt = stmt.where(DeadJob.task == task)
    rows = list(
        (
            await session.execute(
                paginate(stmt, DeadJob.failed_at, DeadJob.id, cursor=cursor, limit=limit)
            )
        ).scalars()
    )
    items = [_out(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit and items:
        next_cursor = encode_cursor(items[-1].failed_at, items[-1].id)
    return items, next_cursor


async def _get(session: AsyncSession, dead_id: uuid.UUID) -> DeadJob:
    row = await session.get(DeadJob, dead_id)
    if row is None:
        raise NotFound("No such dead job", code="dead_job_not_found")
    return row


async def get_dead(session: AsyncSession, dead_id: uuid.UUID) -> DeadJobOut:
    return _out(await _get(session, dead_id))


async def retry_dead(
    session: AsyncSession,
    queue: JobQueue,
    meta: RequestMeta,
    subject: AuthSubject,
    dead_id: uuid.UUID,
) -> str:
    """Enqueue the job again with a fresh retry budget once the removal has committed."""
    row = await _get(session, dead_id)
    if row.task not in TASKS:
        raise NotFound("The task no longer exists", code="task_not_found")
    task, kwargs, message_id = TASKS[row.task], dict(row.kwargs), row.message_id
    await session.delete(row)
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.JOBS_DEAD_RETRY,
        tenant_id=None,
        target_type="job",
        target_id=message_id,
        details={"task": task.name},
    )

    async def send() -> None:
        await queue.enqueue(task, message_id=message_id, **kwargs)

    after_commit(session, send)
    return message_id


async def discard_dead(
    session: AsyncSession, meta: RequestMeta, subject: AuthSubject, dead_id: uuid.UUID
) -> None:
    row = await _get(session, dead_id)
    await session.execute(delete(DeadJob).where(DeadJob.id == row.id))
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.JOBS_DEAD_DISCARD,
        tenant_id=None,
        target_type="job",
        target_id=row.message_id,
        details={"task": row.task},
    )


async def stats(session: AsyncSession, queue: JobQueue) -> JobStats:
    depth = await queue.depth()
    counters = await queue.counters()
    dead = int((await session.execute(select(func.count()).select_from(DeadJob))).scalar_one())
    return JobStats(
        broker=type(queue.broker).__name__,
        queues={name: QueueDepth(**d) for name, d in depth.items()},
        tasks={
            name: TaskCounts(queue=queue.queue_name(TASKS[name].priority), **row)
            for name, row in counters.items()
        },
        dead_letters=dead,
    )
