"""The studio's edit form for one event: title, description, visibility, scheduled start,
latency mode, DVR window and recording, saved by `events.crud.update_event` (`PUT
/api/events/{id}`) with the same rules (managers only, the latency modes this deployment
offers, the DVR limit, optimistic concurrency by the version the form was drawn from)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from pydantic import ValidationError
from starlette.responses import Response

from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.errors import BigfootError
from bigfootlive.events import access, crud
from bigfootlive.events.latency import supported_modes
from bigfootlive.events.schemas import EventUpdate
from bigfootlive.models import Event
from bigfootlive.routing import JsonRoute
from bigfootlive.web.render import page, redirect
from bigfootlive.web.security import check_csrf
from bigfootlive.web.session import BrowserSubject
from bigfootlive.web.studio import _streamer

router = APIRouter(
    prefix="/studio/events/{event_id}",
    tags=["web"],
    route_class=JsonRoute,
    include_in_schema=False,
    dependencies=[Depends(check_csrf)],
)

Short = Annotated[str, Form(max_length=200)]


def _form_of(event: Event) -> dict[str, Any]:
    start = event.scheduled_start
    return {
        "title": event.title,
        "description": event.description or "",
        "visibility": event.visibility,
        "latency_mode": event.latency_mode,
        "dvr_window_minutes": str(event.dvr_window_seconds // 60),
        "recording": event.recording,
        "scheduled_start": start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M") if start else "",
        "version": event.version,
    }


def _edit_page(
    request: Request,
    state: State,
    event: dict[str, Any],
    form: dict[str, Any],
    error: str | None,
    code: int,
) -> Response:
    """`event`: its id and title, read before any rollback (which expires the ORM object)."""
    modes = [m.value for m in supported_modes(state.settings)]
    context = {"event": event, "form": form, "error": error, "modes": modes}
    return page(request, "studio/edit.html", context, code)


@router.get("/edit")
async def edit_form(
    event_id: uuid.UUID,
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: ReadSession,
) -> Response:
    me = _streamer(request, subject)  # SignInRequired: to the sign-in page
    event = await access.get_managed_event(session, me, event_id)
    shown = {"id": event.id, "title": event.title}
    return _edit_page(request, state, shown, _form_of(event), None, 200)


@router.post("/edit")
async def save(
    event_id: uuid.UUID,
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    title: Short,
    version: Annotated[int, Form(ge=1)],
    visibility: Short = "public",
    latency_mode: Short = "normal",
    description: Annotated[str, Form(max_length=5000)] = "",
    scheduled_start: Short = "",
    dvr_window_minutes: Short = "30",
    recording: Annotated[bool, Form()] = False,
) -> Response:
    """`scheduled_start` is a UTC `datetime-local` value (the page says so); empty keeps it."""
    me = _streamer(request, subject)  # SignInRequired: to the sign-in page
    event = await access.get_managed_event(session, me, event_id)
    shown = {"id": event.id, "title": event.title}
    form = {
        **_form_of(event), "title": title, "description": description, "visibility": visibility,
        "latency_mode": latency_mode, "recording": recording, "scheduled_start": scheduled_start,
        "dvr_window_minutes": dvr_window_minutes,
    }  # fmt: skip
    try:
        start = (
            dt.datetime.fromisoformat(scheduled_start).replace(tzinfo=dt.UTC)
            if scheduled_start
            else None
        )
        patch = EventUpdate(
            title=title.strip(), description=description, visibility=visibility,
            latency_mode=latency_mode, recording=recording, scheduled_start=start,
            dvr_window_seconds=int(dvr_window_minutes) * 60, version=version,
        )  # fmt: skip
    except (ValueError, ValidationError):
        error = "Check the fields: a title, a visibility and latency from the lists, a start as "
        error += "date and time (UTC), a DVR window in whole minutes up to 1440."
        return _edit_page(request, state, shown, form, error, 422)
    try:
        await crud.update_event(state, session, meta, me, event_id, patch)
    except BigfootError as exc:
        await session.rollback()
        return _edit_page(request, state, shown, form, exc.message, exc.status_code)
    return redirect(request, f"/studio/events/{event_id}?saved=1")
