"""The studio's simulcast panel for one event: each destination (name, platform, masked key)
with its state (connecting, live, retrying, failed, stopped, idle), the reason of a failure and
its attempts, refreshed every few seconds while the page is open; the form that adds one
(platform, name, server URL for a custom one, stream key) and a Remove button on each.

The same services as `/api/events/{id}/simulcast` (`events.simulcast.list_destinations`,
`create_destination`, `delete_destination`): the event's managers only, with the API's checks
(the schema's lengths, an rtmp:// or rtmps:// URL, a key without spaces, the tenant's limit, no
destination added to a finished event). The key goes in and never comes out: the form's field is
a password field, never filled again, and the pages show the masked hint only."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from pydantic import ValidationError
from starlette.responses import Response

from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.errors import BigfootError
from bigfootlive.events import access, simulcast
from bigfootlive.events.simulcast_schemas import DestinationCreate
from bigfootlive.models import Event
from bigfootlive.routing import JsonRoute
from bigfootlive.web.outcome import describe
from bigfootlive.web.render import page, redirect
from bigfootlive.web.security import check_csrf
from bigfootlive.web.session import BrowserSubject
from bigfootlive.web.studio import PLATFORMS, _streamer

router = APIRouter(
    prefix="/studio/events/{event_id}",
    tags=["web"],
    route_class=JsonRoute,
    include_in_schema=False,
    dependencies=[Depends(check_csrf)],
)

# What the schema's refusals mean on the form, field by field.
_TOO_LONG = {
    "name": "The name is at most 100 characters.",
    "url": "The server URL is at most 900 characters.",
    "stream_key": "The stream key is at most 512 characters.",
}
_MISSING = {
    "platform": "Choose a platform from the list.",
    "stream_key": "Enter the stream key the platform gave you.",
}


def _form_error(exc: ValidationError) -> str:
    said: list[str] = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err.get("loc") else ""
        long = err.get("type") == "string_too_long"
        text = _TOO_LONG.get(field) if long else _MISSING.get(field)
        text = text or _MISSING.get(field) or "Check the form."
        if text not in said:
            said.append(text)
    return " ".join(said)


def _shown(event: Event, rows: Any) -> dict[str, Any]:
    items = [simulcast.destination_out(row) for row in rows]
    return {"event": event, "event_id": event.id, "items": items, "platforms": PLATFORMS}


@router.get("/simulcast")
async def destinations(
    event_id: uuid.UUID, request: Request, subject: BrowserSubject, session: ReadSession
) -> Response:
    """The list (htmx refreshes it on the studio page); opened directly, the list and the form."""
    me = _streamer(request, subject)  # SignInRequired: to the sign-in page
    rows = await simulcast.list_destinations(session, me, event_id)  # 404/403: the API's rule
    event = await access.get_managed_event(session, me, event_id)
    return page(request, "studio/simulcast.html", {**_shown(event, rows), "form": {}})


@router.post("/simulcast")
async def add(
    event_id: uuid.UUID,
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    platform: Annotated[str, Form(max_length=40)] = "",
    name: Annotated[str, Form(max_length=400)] = "",
    url: Annotated[str, Form(max_length=4000)] = "",
    stream_key: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """`POST /api/events/{id}/simulcast` from the form; back to the studio page once added, else
    the simulcast page with the reason and the form as sent, its key field empty."""
    me = _streamer(request, subject)  # SignInRequired: to the sign-in page
    form = {"platform": platform, "name": name, "url": url}
    error: str | None = None
    status = 422
    try:
        body = DestinationCreate(
            platform=platform, name=name.strip() or None, url=url.strip() or None,
            stream_key=stream_key.strip(),
        )  # fmt: skip
    except ValidationError as exc:
        error = _form_error(exc)
    else:
        try:
            await simulcast.create_destination(state, session, meta, me, event_id, body)
        except BigfootError as exc:
            if exc.status_code == 404:
                raise
            await session.rollback()
            error, status = describe(exc), exc.status_code
            error = error.replace(
                "in stream_key,", "in the Destination stream key field,"
            )  # the API's name
            if exc.details.get("limit") is not None:
                error = f"{error.rstrip('.')} ({exc.details['limit']})."
    if error is None:
        return redirect(request, f"/studio/events/{event_id}?simulcast=added#simulcast-title")
    rows = await simulcast.list_destinations(session, me, event_id)
    event = await access.get_managed_event(session, me, event_id)
    context = {**_shown(event, rows), "form": form, "error": error}
    return page(request, "studio/simulcast.html", context, status)


@router.post("/simulcast/{destination_id}/remove")
async def remove(
    event_id: uuid.UUID,
    destination_id: uuid.UUID,
    request: Request,
    subject: BrowserSubject,
    session: DbSession,
    meta: Meta,
) -> Response:
    """`DELETE /api/events/{id}/simulcast/{destination id}`: it stops being restreamed to."""
    me = _streamer(request, subject)  # SignInRequired: to the sign-in page
    await simulcast.delete_destination(session, meta, me, event_id, destination_id)
    return redirect(request, f"/studio/events/{event_id}?simulcast=removed#simulcast-title")
