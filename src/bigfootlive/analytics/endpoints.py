from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import AwareDatetime

from bigfootlive.analytics import service
from bigfootlive.analytics.schemas import (
    BeaconBatch,
    BeaconsAccepted,
    Dashboard,
    EventAnalytics,
    HealthPage,
    PlatformAnalytics,
    PlatformStats,
)
from bigfootlive.authz.deps import CurrentSubject, OptionalSubject, PlatformAdmin
from bigfootlive.deps import Meta, ReadSession, ReportSession, State
from bigfootlive.routing import JsonRoute

router = APIRouter(prefix="/api/analytics", tags=["analytics"], route_class=JsonRoute)
platform_router = APIRouter(prefix="/api/platform", tags=["platform"], route_class=JsonRoute)


@router.post("/events/{event_id}/beacons", status_code=status.HTTP_202_ACCEPTED)
async def post_beacons(
    event_id: uuid.UUID,
    body: BeaconBatch,
    subject: OptionalSubject,
    state: State,
    session: ReadSession,
    meta: Meta,
) -> BeaconsAccepted:
    """Player beacons (start, heartbeat, stop with QoE); anonymous viewers of public events too."""
    accepted = await service.ingest_beacons(state, session, subject, event_id, body, meta.ip)
    return BeaconsAccepted(accepted=accepted)


@router.get("/events/{event_id}")
async def event_analytics(
    event_id: uuid.UUID, subject: CurrentSubject, state: State, session: ReportSession
) -> EventAnalytics:
    return await service.event_analytics(state, session, subject, event_id)


@router.get("/events/{event_id}/health")
async def event_health(
    event_id: uuid.UUID,
    subject: CurrentSubject,
    session: ReportSession,
    before: Annotated[
        AwareDatetime | None,
        Query(description="Only minutes before this one (a page's next_before)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_HEALTH_PAGE)] = 60,
) -> HealthPage:
    """Stream health per minute (worst verdict, reasons, bitrate, fps, size), a page at a time:
    the latest `limit` minutes, oldest first."""
    return await service.health_history(session, subject, event_id, before=before, limit=limit)


@router.get(
    "/events/{event_id}/timeline.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def event_timeline_csv(
    event_id: uuid.UUID, subject: CurrentSubject, session: ReportSession
) -> Response:
    body = await service.timeline_csv(session, subject, event_id)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="event-{event_id}-timeline.csv"'},
    )


@router.get("/dashboard")
async def dashboard(subject: CurrentSubject, session: ReportSession) -> Dashboard:
    return await service.dashboard(session, subject)


@router.get("/platform")
async def platform(_: PlatformAdmin, state: State, session: ReportSession) -> PlatformAnalytics:
    return await service.platform_analytics(state, session)


@platform_router.get("/stats")
async def platform_stats(_: PlatformAdmin, state: State, session: ReportSession) -> PlatformStats:
    return await service.platform_stats(state, session)
