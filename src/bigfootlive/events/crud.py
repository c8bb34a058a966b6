"""Live events: creating, listing and editing them. Knows nothing of HTTP."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.roles import Role
from bigfootlive.authz.scoping import platform_scope
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.config import Settings
from bigfootlive.db import after_commit, utcnow
from bigfootlive.errors import Conflict, Unprocessable
from bigfootlive.events import repository as repo
from bigfootlive.events.access import get_managed_event
from bigfootlive.events.keys import new_playback_id, new_stream_key, set_stream_key
from bigfootlive.events.latency import require_latency_mode
from bigfootlive.events.lifecycle import event_cache, illegal
from bigfootlive.events.ports import EventsState
from bigfootlive.events.schemas import EventCreate, EventStatus, EventUpdate
from bigfootlive.events.wire import CHANGED_CHANNEL
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import Event

S = EventStatus


class VersionMismatch(Conflict):
    code = "version_mismatch"
    message = "The event was changed by someone else; reload it and try again"


async def create_event(
    state: EventsState,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    body: EventCreate,
) -> tuple[Event, str]:
    """A new scheduled event; returns it with its stream key (shown once here, then on demand
    to its managers)."""
    if body.recording:
        require_recording(state.settings)
    require_latency_mode(state.settings, body.latency_mode)
    require_dvr_window(state.settings, body.dvr_window_seconds)
    event = Event(
        id=uuid.uuid4(),
        tenant_id=subject.tenant_id,
        owner_id=subject.user_id,
        title=body.title,
        description=body.description,
        visibility=body.visibility.value,
        scheduled_start=body.scheduled_start,
        recording=body.recording,
        latency_mode=body.latency_mode.value,
        dvr_window_seconds=body.dvr_window_seconds,
        status=S.SCHEDULED.value,
        version=1,
        playback_id=new_playback_id(),
    )
    stream_key = new_stream_key()
    set_stream_key(state, event, stream_key)
    session.add(event)
    await session.flush()
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.EVENT_CREATE,
        tenant_id=event.tenant_id,
        target_type="event",
        target_id=event.id,
        details={"visibility": event.visibility},
    )
    return event, stream_key


async def list_events(
    session: AsyncSession,
    viewer: AuthSubject | None,
    *,
    statuses: Sequence[EventStatus],
    owner_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
) -> Sequence[Event]:
    """Events the viewer may see, newest first: its tenant's (respecting visibility) when
    signed in, public events of every tenant when anonymous. `limit + 1` rows (see page_of)."""
    stmt = repo.page_query(
        tenant_id=None if viewer is None else viewer.tenant_id,
        statuses=statuses,
        owner_id=owner_id,
        viewer_id=None if viewer is None else viewer.user_id,
        sees_all_in_tenant=viewer is not None
        and (viewer.is_platform_admin or viewer.role >= Role.MODERATOR),
    )
    if viewer is None:  # the public directory: public events of every tenant, nothing else
        with platform_scope("public event directory"):
            return await repo.page(session, stmt, cursor=cursor, limit=limit)
    return await repo.page(session, stmt, cursor=cursor, limit=limit)


async def update_event(
    state: EventsState,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    event_id: uuid.UUID,
    patch: EventUpdate,
) -> Event:
    event = await get_managed_event(session, subject, event_id)
    if EventStatus(event.status).is_finished:
        raise illegal("update", EventStatus(event.status))
    if patch.version is not None and patch.version != event.version:
        raise VersionMismatch(current_version=event.version)
    changes = patch.model_dump(exclude_unset=True, exclude={"version"})
    changes = {k: v for k, v in changes.items() if v is not None or k == "scheduled_start"}
    if not changes:
        return event
    if changes.get("recording"):
        require_recording(state.settings)
    if patch.latency_mode is not None:
        require_latency_mode(state.settings, patch.latency_mode)
    if patch.dvr_window_seconds is not None:
        require_dvr_window(state.settings, patch.dvr_window_seconds)
    for field, value in changes.items():
        setattr(event, field, value.value if hasattr(value, "value") else value)
    event.version += 1
    event.updated_at = utcnow()
    await session.flush()
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.EVENT_UPDATE,
        tenant_id=event.tenant_id,
        target_type="event",
        target_id=event.id,
        details={"fields": sorted(changes)},
    )
    _remember_after_commit(state, session, event)
    return event


class RecordingUnavailable(Unprocessable):
    code = "recording_unavailable"
    message = "Recording was requested but cannot run here"


def require_recording(settings: Settings) -> None:
    """A recording needs ffmpeg where the event's worker runs (this machine for the inprocess
    and subprocess runtimes; the worker image brings its own on Kubernetes)."""
    if settings.container_runtime == "kubernetes":
        return
    if shutil.which(settings.ffmpeg_path) is None:
        raise RecordingUnavailable(
            f"Recording needs ffmpeg ({settings.ffmpeg_path!r} is not installed on the media "
            "worker); create the event without recording or install ffmpeg"
        )


class DvrWindowTooLong(Unprocessable):
    code = "dvr_window_too_long"
    message = "The DVR window is longer than this deployment allows"


def require_dvr_window(settings: Settings, seconds: int) -> None:
    if seconds > settings.dvr_max_window_seconds:
        raise DvrWindowTooLong(
            f"dvr_window_seconds is at most {settings.dvr_max_window_seconds} here "
            "(DVR_MAX_WINDOW_SECONDS)",
            max_seconds=settings.dvr_max_window_seconds,
        )


def _remember_after_commit(state: EventsState, session: AsyncSession, event: Event) -> None:
    cache = event_cache(state)

    async def remember() -> None:
        await cache.remember(event)
        await state.pubsub.publish(CHANGED_CHANNEL, str(event.id).encode())

    after_commit(session, remember)
