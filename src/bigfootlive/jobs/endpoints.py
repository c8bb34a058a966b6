from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from bigfootlive.authz.deps import PlatformAdmin
from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.jobs import service
from bigfootlive.jobs.schemas import DeadJobOut, JobStats, RetryAccepted
from bigfootlive.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from bigfootlive.routing import JsonRoute

router = APIRouter(prefix="/api/platform/jobs", tags=["jobs"], route_class=JsonRoute)


@router.get("/stats")
async def job_stats(_: PlatformAdmin, state: State, session: ReadSession) -> JobStats:
    return await service.stats(session, state.jobs)


@router.get("/dead")
async def dead_jobs(
    _: PlatformAdmin,
    session: ReadSession,
    task: Annotated[str | None, Query(max_length=100)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[DeadJobOut]:
    items, next_cursor = await service.list_dead(session, task=task, cursor=cursor, limit=limit)
    return Page[DeadJobOut](items=items, next_cursor=next_cursor)


@router.post("/dead/{dead_id}/retry", status_code=status.HTTP_202_ACCEPTED)
async def retry_dead_job(
    dead_id: uuid.UUID, subject: PlatformAdmin, state: State, session: DbSession, meta: Meta
) -> RetryAccepted:
    message_id = await service.retry_dead(session, state.jobs, meta, subject, dead_id)
    return RetryAccepted(message_id=message_id)


@router.delete("/dead/{dead_id}", status_code=status.HTTP_204_NO_CONTENT)
async def discard_dead_job(
    dead_id: uuid.UUID, subject: PlatformAdmin, session: DbSession, meta: Meta
) -> Response:
    await service.discard_dead(session, meta, subject, dead_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
