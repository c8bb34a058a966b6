"""Clips: a streamer or moderator cuts part of an event (from its DVR window while on air, or
from its published recording) into a VOD asset of its own with a poster.

The request is checked here (range, window, length, who) and a `clips` row written `pending`;
the `containers.tasks.cut_clip` job (cutting.py) cuts it with ffmpeg, stream copy, into
`vod/<event id>/clips/<clip id>/index.m3u8` + `poster.jpg`, served like the event's VOD (same
delivery authorization). Knows nothing of HTTP.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.roles import Role
from bigfootlive.authz.scoping import scoped
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.config import Settings
from bigfootlive.containers import repository as repo
from bigfootlive.containers.schemas import ClipCreate, ClipOut
from bigfootlive.containers.storage import make_storage
from bigfootlive.db import after_commit, utcnow
from bigfootlive.errors import Conflict, Forbidden, NotFound, Unprocessable
from bigfootlive.events import access
from bigfootlive.events.schemas import EventStatus
from bigfootlive.jobs import enqueue_after_commit
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import Clip, Event

CUT_CLIP_TASK = "containers.tasks.cut_clip"


class ClipNotFound(NotFound):
    code = "clip_not_found"
    message = "No such clip"


class NotClipper(Forbidden):
    code = "not_event_manager"
    message = "Only the event's owner, a tenant moderator or an admin can cut or delete clips"


class InvalidClipRange(Unprocessable):
    code = "invalid_clip_range"
    message = "The clip's start and end are not valid"


class ClipOutOfRange(Unprocessable):
    code = "clip_out_of_range"
    message = "The clip is not within the DVR window or the recording"


class ClipSourceUnavailable(Conflict):
    code = "clip_source_unavailable"
    message = "There is nothing to cut the clip from"


def clip_prefix(event_id: uuid.UUID, clip_id: uuid.UUID) -> str:
    return f"vod/{event_id}/clips/{clip_id}"


def clip_out(clip: Clip) -> ClipOut:
    return ClipOut.model_validate(clip, from_attributes=True)


async def _clippable_event(
    session: AsyncSession, subject: AuthSubject, event_id: uuid.UUID
) -> Event:
    """The event's managers and the tenant's moderators; 404 for whoever may not see it."""
    event = await access.get_event(session, subject.tenant_id, event_id)
    if access.can_manage(subject, event) or subject.role >= Role.MODERATOR:
        return event
    if not access.can_view(subject, event):
        raise access.EventNotFound()
    raise NotClipper()


def _check_dvr(settings: Settings, event: Event, body: ClipCreate, now: dt.datetime) -> None:
    if body.start_at is None or body.end_at is None or body.start_seconds is not None:
        raise InvalidClipRange("A DVR clip takes start_at and end_at (wall-clock times)")
    if not EventStatus(event.status).is_on_air:
        raise ClipSourceUnavailable(
            "DVR clips are cut while the event is on air; cut from its recording afterwards",
            code="event_not_on_air",
        )
    if event.dvr_window_seconds <= 0:
        raise ClipSourceUnavailable("The event has no DVR window", code="dvr_disabled")
    _check_length(settings, (body.end_at - body.start_at).total_seconds())
    oldest = now - dt.timedelta(seconds=event.dvr_window_seconds)
    if body.start_at < oldest or body.end_at > now:
        raise ClipOutOfRange(
            "start_at and end_at must be within the DVR window",
            window_start=oldest.isoformat(),
            window_end=now.isoformat(),
        )


async def _check_recording(
    settings: Settings, session: AsyncSession, event: Event, body: ClipCreate
) -> None:
    if body.start_seconds is None or body.end_seconds is None or body.start_at is not None:
        raise InvalidClipRange("A recording clip takes start_seconds and end_seconds")
    if settings.recordings_storage != "local":
        raise ClipSourceUnavailable(
            "Clips from recordings need RECORDINGS_STORAGE=local", code="clips_unavailable"
        )
    recordings = await repo.recordings_of(session, event.tenant_id, event.id)
    ready = [r for r in recordings if r.status == "ready"]
    if not ready:
        raise ClipSourceUnavailable("The event has no published recording", code="no_recording")
    _check_length(settings, body.end_seconds - body.start_seconds)
    duration = ready[-1].duration_seconds
    if body.end_seconds > duration:
        raise ClipOutOfRange(
            "end_seconds is past the end of the recording", recording_duration_seconds=duration
        )


def _check_length(settings: Settings, seconds: float) -> None:
    if seconds <= 0:
        raise InvalidClipRange("The clip must end after it starts")
    if seconds > settings.clip_max_seconds:
        raise InvalidClipRange(
            f"A clip is at most {settings.clip_max_seconds:g} s long (CLIP_MAX_SECONDS)",
            max_seconds=settings.clip_max_seconds,
        )


async def create_clip(
    settings: Settings,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    event_id: uuid.UUID,
    body: ClipCreate,
) -> Clip:
    event = await _clippable_event(session, subject, event_id)
    if body.source == "dvr":
        _check_dvr(settings, event, body, utcnow())
    else:
        await _check_recording(settings, session, event, body)
    clip = Clip(
        id=uuid.uuid4(),
        tenant_id=event.tenant_id,
        event_id=event.id,
        created_by=subject.user_id,
        title=body.title,
        source=body.source,
        start_at=body.start_at,
        end_at=body.end_at,
        start_seconds=body.start_seconds,
        end_seconds=body.end_seconds,
        status="pending",
        duration_seconds=0.0,
    )
    session.add(clip)
    await session.flush()
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.CLIP_CREATE,
        tenant_id=event.tenant_id,
        target_type="clip",
        target_id=clip.id,
        details={"event_id": str(event.id), "source": body.source},
    )
    enqueue_after_commit(session, CUT_CLIP_TASK, clip_id=str(clip.id))
    return clip


async def list_clips(
    session: AsyncSession, viewer: AuthSubject | None, event_id: uuid.UUID
) -> Sequence[Clip]:
    """Whoever may watch the event sees its clips (404 otherwise, as for the event)."""
    event = await access.get_viewable_event(session, viewer, event_id)
    stmt = scoped(select(Clip), Clip, event.tenant_id).where(Clip.event_id == event.id)
    return (await session.execute(stmt.order_by(Clip.created_at.desc()))).scalars().all()


async def get_clip(
    session: AsyncSession, viewer: AuthSubject | None, event_id: uuid.UUID, clip_id: uuid.UUID
) -> Clip:
    event = await access.get_viewable_event(session, viewer, event_id)
    return await _clip_of(session, event, clip_id)


async def _clip_of(session: AsyncSession, event: Event, clip_id: uuid.UUID) -> Clip:
    stmt = scoped(select(Clip), Clip, event.tenant_id).where(
        Clip.event_id == event.id, Clip.id == clip_id
    )
    clip = (await session.execute(stmt)).scalars().first()
    if clip is None:
        raise ClipNotFound()
    return clip


async def delete_clip(
    settings: Settings,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    event_id: uuid.UUID,
    clip_id: uuid.UUID,
) -> None:
    """The row now, its files once that commits."""
    event = await _clippable_event(session, subject, event_id)
    clip = await _clip_of(session, event, clip_id)
    await session.delete(clip)
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.CLIP_DELETE,
        tenant_id=event.tenant_id,
        target_type="clip",
        target_id=clip_id,
        details={"event_id": str(event.id)},
    )

    async def remove_files() -> None:
        await make_storage(settings).delete_prefix(clip_prefix(event.id, clip_id))

    after_commit(session, remove_files)
