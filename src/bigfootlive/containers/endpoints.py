from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from bigfootlive.authz.deps import CurrentSubject, OptionalSubject, PlatformAdmin
from bigfootlive.containers import clips, service
from bigfootlive.containers.schemas import ClipCreate, ClipOut, ContainerStatsOut, RecordingOut
from bigfootlive.deps import DbSession, Meta, ReadSession, State
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


@router.post("/{event_id}/restart", status_code=status.HTTP_202_ACCEPTED)
async def restart_container(
    event_id: uuid.UUID, subject: PlatformAdmin, session: DbSession, meta: Meta
) -> Response:
    """Replace the event's container with a new one (platform admins; audited): the current
    worker is fenced off and the manager launches another on its next reconcile."""
    await service.request_restart(session, meta, subject, event_id)
    return Response(status_code=status.HTTP_202_ACCEPTED)


@recordings_router.get("/{event_id}/recordings")
async def list_recordings(
    event_id: uuid.UUID, subject: OptionalSubject, session: ReadSession
) -> list[RecordingOut]:
    """The event's recordings, as HLS VOD assets under CDN_BASE_URL."""
    return await service.recordings_of(session, subject, event_id)


@recordings_router.post("/{event_id}/clips", status_code=status.HTTP_201_CREATED)
async def create_clip(
    event_id: uuid.UUID,
    body: ClipCreate,
    subject: CurrentSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> ClipOut:
    """Cut a clip (the event's owner, tenant moderators and admins): from the DVR window while
    on air (`start_at`/`end_at`) or from the recording (`start_seconds`/`end_seconds`). Answers
    `pending`; a background job cuts it into its own VOD asset with a poster."""
    clip = await clips.create_clip(state.settings, session, meta, subject, event_id, body)
    return clips.clip_out(clip)


@recordings_router.get("/{event_id}/clips")
async def list_clips(
    event_id: uuid.UUID, subject: OptionalSubject, session: ReadSession
) -> list[ClipOut]:
    """The event's clips, newest first, for whoever may watch the event."""
    return [clips.clip_out(c) for c in await clips.list_clips(session, subject, event_id)]


@recordings_router.get("/{event_id}/clips/{clip_id}")
async def get_clip(
    event_id: uuid.UUID, clip_id: uuid.UUID, subject: OptionalSubject, session: ReadSession
) -> ClipOut:
    return clips.clip_out(await clips.get_clip(session, subject, event_id, clip_id))


@recordings_router.delete("/{event_id}/clips/{clip_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_clip(
    event_id: uuid.UUID,
    clip_id: uuid.UUID,
    subject: CurrentSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> Response:
    await clips.delete_clip(state.settings, session, meta, subject, event_id, clip_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
