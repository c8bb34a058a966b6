from __future__ import annotations

import uuid

from fastapi import APIRouter

from bigfootlive.authz.deps import CurrentSubject, OptionalSubject
from bigfootlive.containers import service
from bigfootlive.containers.schemas import ContainerStatsOut, RecordingOut
from bigfootlive.deps import ReadSession, State
from bigfootlive.routing import JsonRoute

router = APIRouter(prefix="/api/containers", tags=["containers"], route_class=JsonRoute)
recordings_router = APIRouter(prefix="/api/events", tags=["events"], route_class=JsonRoute)


@router.get("/stats")
async def container_stats(
    subject: CurrentSubject, state: State, session: ReadSession, include_stopped: bool = False
) -> ContainerStatsOut:
    """Event containers with state, uptime, CPU, memory, restarts, and compute used per tenant
    (container-seconds). Platform admins see every tenant; tenant admins their own."""
    return await service.container_stats(state, session, subject, include_stopped=include_stopped)


@recordings_router.get("/{event_id}/recordings")
async def list_recordings(
    event_id: uuid.UUID, subject: OptionalSubject, session: ReadSession
) -> list[RecordingOut]:
    """The event's recordings, as HLS VOD assets under CDN_BASE_URL."""
    return await service.recordings_of(session, subject, event_id)
