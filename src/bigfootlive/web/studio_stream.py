"""The studio's stream panels for one event: rotating the stream key (with the step-up the API
requires), the stream's health (bitrate, fps, keyframe interval, verdict), and its recordings.

Rotation calls `events.keys.rotate_stream_key` (`POST /api/events/{id}/stream-key`): without a
recent second factor it refuses with `step_up_required` and a challenge; the page keeps that
challenge in an HttpOnly cookie, asks for the code (or the password, for an account without a
factor), answers it with `mfa.verification.verify` (`POST /api/auth/mfa/verify`), which gives
the same session a fresh access token, and rotates. Health is `streaming.service.stream_health`
(`GET /api/streaming/events/{id}/health`); recordings are the event's ready recordings.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from bigfootlive.authz.deps import authenticate
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.containers import repository as recordings_repo
from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.errors import BigfootError
from bigfootlive.events import access, keys
from bigfootlive.events.playback import ingest_for, viewer_token, with_token
from bigfootlive.kit.request import RequestMeta
from bigfootlive.mfa import verification
from bigfootlive.mfa.policy import StepUpRequired
from bigfootlive.mfa.schemas import StepUpOut
from bigfootlive.routing import JsonRoute
from bigfootlive.streaming import service as streaming
from bigfootlive.web.charts import polyline_chart
from bigfootlive.web.render import page
from bigfootlive.web.security import check_csrf
from bigfootlive.web.session import SESSION_COOKIE, BrowserSubject, cookies_of
from bigfootlive.web.studio import _streamer

router = APIRouter(
    prefix="/studio/events/{event_id}",
    tags=["web"],
    route_class=JsonRoute,
    include_in_schema=False,
    dependencies=[Depends(check_csrf)],
)

STEP_UP_COOKIE = "bfl_step_up"
WEB_METHODS = ("totp", "backup_code", "password")  # the factors this page can ask for


async def _rotate(
    request: Request,
    state: State,
    session: AsyncSession,
    meta: RequestMeta,
    me: AuthSubject,
    event_id: uuid.UUID,
) -> Response:
    try:
        event, stream_key = await keys.rotate_stream_key(state, session, meta, me, event_id)
    except StepUpRequired as exc:
        await session.rollback()
        challenge: dict[str, Any] = exc.details["challenge"]
        cookies_of(request).set(
            STEP_UP_COOKIE, challenge["challenge_token"], int(challenge["expires_in"])
        )
        methods = [m for m in challenge.get("methods", []) if m in WEB_METHODS]
        event = await access.get_managed_event(session, me, event_id)  # its title on the page
        context = {"event_id": event_id, "event_title": event.title, "methods": methods}
        return page(request, "studio/step_up.html", context, 200)
    except BigfootError as exc:
        if exc.status_code == 404:
            raise
        await session.rollback()
        context = {"event_id": event_id, "error": exc.message}
        return page(request, "studio/rotated.html", context, exc.status_code)
    cookies_of(request).clear(STEP_UP_COOKIE)
    ingest = ingest_for(state.settings, event.playback_id, stream_key)
    return page(request, "studio/rotated.html", {"event": event, "ingest": ingest, "error": None})


@router.post("/key/rotate")
async def rotate_key(
    event_id: uuid.UUID,
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> Response:
    """A new stream key (the old one is refused from now on), after a step-up if needed."""
    me = _streamer(request, subject)  # SignInRequired: to the sign-in page
    return await _rotate(request, state, session, meta, me, event_id)


@router.post("/key/rotate/verify")
async def verify_and_rotate(
    event_id: uuid.UUID,
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    method: Annotated[str, Form(pattern="^(totp|backup_code|password)$")],
    code: Annotated[str, Form(max_length=32)] = "",
    password: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Answer the step-up challenge, then rotate with the session's fresh token."""
    me = _streamer(request, subject)  # SignInRequired: to the sign-in page
    event = await access.get_managed_event(session, me, event_id)  # 404/403 before verifying
    shown = {"event_id": event_id, "event_title": event.title}
    token = request.cookies.get(STEP_UP_COOKIE)
    if not token:
        return await _rotate(request, state, session, meta, me, event_id)
    try:
        result = await verification.verify(
            state, session, meta, token=token, method=method, factor_id=None,
            code=code.strip().replace(" ", "") or None, credential=None,
            password=password or None,
        )  # fmt: skip
    except BigfootError as exc:
        await session.rollback()
        context = {**shown, "methods": [method], "error": exc.message}
        return page(request, "studio/step_up.html", context, exc.status_code)
    if not isinstance(result, StepUpOut):
        context = {**shown, "methods": [method], "error": "Sign in again."}
        return page(request, "studio/step_up.html", context, 400)
    cookies_of(request).set(
        SESSION_COOKIE, result.access_token, state.settings.refresh_token_ttl_seconds
    )
    fresh = await authenticate(state, result.access_token)
    return await _rotate(request, state, session, meta, fresh, event_id)


def _chart(history: list[dict[str, Any]], field: str) -> dict[str, Any] | None:
    """One figure of the health history over time."""
    return polyline_chart([(h["at"], h[field]) for h in history if h.get(field) is not None])


@router.get("/health")
async def health(
    event_id: uuid.UUID,
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: ReadSession,
) -> Response:
    """The health panel alone (htmx refreshes it every few seconds)."""
    me = _streamer(request, subject)  # SignInRequired: to the sign-in page
    event = await access.get_managed_event(session, me, event_id)
    report = await streaming.stream_health(state, event)
    context = {
        "event": event,
        "report": report,
        "current": report.current or {},
        "bitrate_chart": _chart(report.history, "bitrate_kbps"),
        "fps_chart": _chart(report.history, "fps"),
    }
    return page(request, "studio/health.html", context)


@router.get("/recordings")
async def recordings(
    event_id: uuid.UUID,
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: ReadSession,
) -> Response:
    """The event's recordings, each with a player (the studio page loads this with htmx)."""
    me = _streamer(request, subject)  # SignInRequired: to the sign-in page
    event = await access.get_managed_event(session, me, event_id)
    rows = await recordings_repo.recordings_of(session, event.tenant_id, event.id)
    issued = viewer_token(
        state.playback_tokens,
        event_id=event.id,
        playback_id=event.playback_id,
        visibility=event.visibility,
        viewer_id=me.user_id,
    )
    token = None if issued is None else issued[0]
    items = [
        {"row": r, "url": with_token(r.playback_url, token) if r.playback_url else None}
        for r in rows
    ]
    context = {"event": event, "recordings": items}
    return page(request, "studio/recordings.html", context)
