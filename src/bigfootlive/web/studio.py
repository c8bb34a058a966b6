"""The streamer studio: my events, creating one, and an event's page with its encoder settings
(server URL, stream key revealed on request), the go-live panel (state, last refused publish,
start and stop), its watch link and its live chat with the moderation controls (the watch page's
chat panel, `web.chat_panel`). The same services as `/api/events` and the stream endpoint:
who may create or manage an event is theirs to say."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from bigfootlive.authz.roles import Permission
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.errors import BigfootError, Forbidden
from bigfootlive.events import access, crud, keys, lifecycle
from bigfootlive.events.playback import hls_url, ingest_for, viewer_token, watch_url, with_token
from bigfootlive.events.schemas import EventCreate, EventStatus
from bigfootlive.events.simulcast_schemas import Platform
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import Event
from bigfootlive.routing import JsonRoute
from bigfootlive.streaming import feedback
from bigfootlive.web.chat_panel import chat_context
from bigfootlive.web.guard import signed_in
from bigfootlive.web.render import page, redirect
from bigfootlive.web.security import check_csrf
from bigfootlive.web.session import BrowserSubject

router = APIRouter(
    prefix="/studio",
    tags=["web"],
    route_class=JsonRoute,
    include_in_schema=False,
    dependencies=[Depends(check_csrf)],
)


Step = Callable[..., Awaitable[Event]]
# The simulcast form's choices (web.studio_simulcast), on the event page too.
PLATFORMS = [
    (Platform.YOUTUBE, "YouTube"),
    (Platform.TWITCH, "Twitch"),
    (Platform.FACEBOOK, "Facebook"),
    (Platform.KICK, "Kick"),
    (Platform.CUSTOM, "Custom (any rtmp:// or rtmps:// server)"),
]


def _streamer(request: Request, subject: AuthSubject | None) -> AuthSubject:
    """The member when its role may stream (403 otherwise); with no session, `SignInRequired`
    (`web.guard`: to the sign-in page, back to this one after)."""
    me = signed_in(subject)
    if not me.can(Permission.EVENTS_CREATE):
        raise Forbidden("Your role cannot stream; ask an admin", code="insufficient_role")
    return me


@router.get("")
async def my_events(request: Request, subject: BrowserSubject, session: ReadSession) -> Response:
    me = _streamer(request, subject)  # SignInRequired: to the sign-in page
    events = await crud.list_events(
        session, me, statuses=list(EventStatus), owner_id=me.user_id, cursor=None, limit=50
    )
    return page(request, "studio/events.html", {"events": events[:50], "form": {}})


@router.post("/events")
async def create(
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    title: Annotated[str, Form(max_length=200)],
    visibility: Annotated[str, Form(max_length=10)] = "public",
    description: Annotated[str, Form(max_length=5000)] = "",
    latency_mode: Annotated[str, Form(max_length=10)] = "normal",
    recording: Annotated[bool, Form()] = False,
) -> Response:
    me = _streamer(request, subject)  # SignInRequired: to the sign-in page
    form = {"title": title, "description": description, "visibility": visibility}
    try:
        body = EventCreate(
            title=title.strip(), description=description, visibility=visibility,
            latency_mode=latency_mode, recording=recording,
        )  # fmt: skip
    except ValidationError:
        error = "Give the event a title, and choose a visibility and latency from the lists."
        context = {"events": [], "form": form, "error": error}
        return page(request, "studio/events.html", context, 422)
    try:
        event, _ = await crud.create_event(state, session, meta, me, body)
    except BigfootError as exc:
        await session.rollback()
        context = {"events": [], "form": form, "error": exc.message}
        return page(request, "studio/events.html", context, exc.status_code)
    return redirect(request, f"/studio/events/{event.id}")


async def _panel_context(state: State, event_id: uuid.UUID, event: object) -> dict[str, object]:
    refused = await feedback.last_refusal(state, event_id)
    return {
        "event": event,
        "refused": refused,
        "refused_text": None if refused is None else feedback.refusal_text(refused.reason),
    }


@router.get("/events/{event_id}")
async def event_page(
    event_id: uuid.UUID,
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: ReadSession,
) -> Response:
    me = _streamer(request, subject)  # SignInRequired: to the sign-in page
    event = await access.get_managed_event(session, me, event_id)
    ingest = ingest_for(state.settings, event.playback_id, "KEY")
    preview = None
    if EventStatus(event.status).is_on_air:  # the stream as viewers get it, with our token
        issued = viewer_token(
            state.playback_tokens, event_id=event.id, playback_id=event.playback_id,
            visibility=event.visibility, viewer_id=me.user_id,
        )  # fmt: skip
        url = hls_url(state.settings, event.playback_id, event.latency_mode)
        preview = with_token(url, None if issued is None else issued[0])
    context = {
        "preview_url": preview,
        **(await _panel_context(state, event_id, event)),
        "server_url": ingest.server_url,
        "watch_url": watch_url(state.settings, event.id),
        "media_server": state.settings.media_server,
        **(await chat_context(session, me, event)),
        "chat_viewers": True,
        "simulcast_platforms": PLATFORMS,
    }
    return page(request, "studio/event.html", context)


@router.get("/events/{event_id}/panel")
async def panel(
    event_id: uuid.UUID,
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: ReadSession,
) -> Response:
    """The go-live panel alone (htmx refreshes it every few seconds)."""
    me = _streamer(request, subject)  # SignInRequired: to the sign-in page
    event = await access.get_managed_event(session, me, event_id)
    return page(request, "studio/panel.html", await _panel_context(state, event_id, event))


@router.post("/events/{event_id}/key")
async def reveal_key(
    event_id: uuid.UUID,
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: ReadSession,
) -> Response:
    """The stream key and publish URL, on request (a POST: never in a cached page)."""
    me = _streamer(request, subject)  # SignInRequired: to the sign-in page
    event = await access.get_managed_event(session, me, event_id)
    ingest = ingest_for(state.settings, event.playback_id, keys.stream_key_of(state, event))
    return page(request, "studio/key.html", {"ingest": ingest, "event": event})


async def _transition(
    request: Request,
    subject: AuthSubject | None,
    state: State,
    session: AsyncSession,
    meta: RequestMeta,
    event_id: uuid.UUID,
    step: Step,
) -> Response:
    me = _streamer(request, subject)  # SignInRequired: to the sign-in page
    try:
        await step(state, session, meta, me, event_id)
    except BigfootError as exc:
        if exc.status_code == 404:
            raise
        await session.rollback()
        event = await access.get_managed_event(session, me, event_id)
        context = {**(await _panel_context(state, event_id, event)), "error": exc.message}
        return page(request, "studio/panel.html", context, exc.status_code)
    return redirect(request, f"/studio/events/{event_id}")


@router.post("/events/{event_id}/start")
async def start(
    event_id: uuid.UUID,
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> Response:
    """Ready for the encoder: its publish is let in from now on."""
    return await _transition(
        request, subject, state, session, meta, event_id, lifecycle.start_event
    )


@router.post("/events/{event_id}/stop")
async def stop(
    event_id: uuid.UUID,
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> Response:
    return await _transition(request, subject, state, session, meta, event_id, lifecycle.stop_event)


@router.post("/events/{event_id}/cancel")
async def cancel(
    event_id: uuid.UUID,
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> Response:
    return await _transition(
        request, subject, state, session, meta, event_id, lifecycle.cancel_event
    )
