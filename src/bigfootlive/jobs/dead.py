"""The dead letters: a job that failed its last attempt, kept for an admin to retry or
discard (`jobs.service`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.models import DeadJob


async def add_dead_job(
    session: AsyncSession,
    *,
    message_id: str,
    queue: str,
    task: str,
    kwargs: dict[str, Any],
    attempts: int,
    error: str,
    trace: str,
) -> None:
    session.add(
        DeadJob(
            message_id=message_id,
            queue=queue,
            task=task,
            kwargs=kwargs,
            attempts=attempts,
            error=error,
            traceback=trace,
        )
    )
