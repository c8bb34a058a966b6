"""The watch page of an event, and the QoE beacons its player sends.

The page is refused (404, as the API does) to whoever may not see the event
(`events.access.get_viewable_event`); a viewer of a tenant or private event gets the same
short-lived playback token `GET /api/streaming/events/{id}/stream` gives, which nginx's delivery
authorization (`GET /api/media/authorize`) checks on every playlist and segment.
"""

from __future__ import annotations

import datetime as dt
import uuid

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from bigfootlive.analytics import service as analytics
from bigfootlive.analytics.schemas import BeaconBatch, BeaconsAccepted
from bigfootlive.containers import repository as recordings_repo
from bigfootlive.containers.storage import public_url
from bigfootlive.deps import Meta, ReadSession, State
from bigfootlive.events import access
from bigfootlive.events.latency import player_settings
from bigfootlive.events.playback import dvr_url, hls_url, thumbnail_url, viewer_token, with_token
from bigfootlive.events.schemas import EventStatus, LatencyMode
from bigfootlive.identity import repository as identity_repo
from bigfootlive.routing import JsonRoute
from bigfootlive.tenants import repository as tenants_repo
from bigfootlive.web.admin_settings import viewer_branding
from bigfootlive.web.chat_panel import chat_context
from bigfootlive.web.render import environment, finish, page
from bigfootlive.web.security import check_csrf
from bigfootlive.web.session import BrowserSubject

router = APIRouter(
    tags=["web"], route_class=JsonRoute, include_in_schema=False, dependencies=[Depends(check_csrf)]
)

_STATE_TEXT = {
    EventStatus.SCHEDULED: "Not started yet",
    EventStatus.READY: "Not started yet",
    EventStatus.LIVE: "Live",
    EventStatus.RECONNECTING: "Reconnecting",
    EventStatus.ENDED: "Ended",
    EventStatus.CANCELLED: "Cancelled",
}


@router.get("/watch/{event_id}")
async def watch(
    event_id: uuid.UUID,
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: ReadSession,
) -> Response:
    event = await access.get_viewable_event(session, subject, event_id)
    status = EventStatus(event.status)
    issued = viewer_token(
        state.playback_tokens,
        event_id=event.id,
        playback_id=event.playback_id,
        visibility=event.visibility,
        viewer_id=None if subject is None else subject.user_id,
    )
    token = None if issued is None else issued[0]
    vod = None
    if status.is_finished:
        recordings = await recordings_repo.recordings_of(session, event.tenant_id, event.id)
        ready = [r.playback_url for r in recordings if r.status == "ready" and r.playback_url]
        vod = with_token(ready[0], token) if ready else None
    # while on air: the DVR playlist (rewind) and the live thumbnail; afterwards the poster
    on_air = status.is_on_air and state.settings.previews_enabled
    rewind = (
        dvr_url(state.settings, event.playback_id) if on_air and event.dvr_window_seconds else None
    )
    poster = thumbnail_url(state.settings, event.playback_id) if on_air else event.poster_url
    url = hls_url(state.settings, event.playback_id, event.latency_mode)
    # the transcoder's ladder (as the API's abr_master_url), for the quality menu
    abr = (
        with_token(public_url(state.settings, f"live/{event.playback_id}/master.m3u8"), token)
        if state.settings.container_transcoder
        else None
    )
    dvr = rewind and with_token(rewind, token)
    tenant = await tenants_repo.get_tenant(session, event.tenant_id)
    owner = await identity_repo.get_user(session, event.tenant_id, event.owner_id)
    return page(
        request,
        "watch.html",
        {
            "event": event,
            **(await chat_context(session, subject, event)),
            "channel": tenant,
            "owner": owner,
            "poster": f"/watch/{event.id}/poster.svg",
            "branding": viewer_branding(tenant),
            "status": status.value,
            "status_text": _STATE_TEXT[status],
            "hls_url": with_token(url, token),
            "player": player_settings(
                state.settings,
                LatencyMode(event.latency_mode),
                event.dvr_window_seconds if rewind else 0,
            ).hls_js,
            "abr_url": abr,
            "vod_url": vod,
            "dvr_url": dvr,
            # the playlist the player starts with (watch.mjs liveUrl), fetched with the page
            "preload_url": (dvr or abr or with_token(url, token))
            if status == EventStatus.LIVE
            else None,
            "poster_url": poster and with_token(poster, token),
            "scheduled": event.scheduled_start.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
            if event.scheduled_start
            else None,
        },
    )


@router.get("/watch/{event_id}/poster.svg")
async def poster(
    event_id: uuid.UUID, request: Request, subject: BrowserSubject, session: ReadSession
) -> Response:
    """The player's poster: the event's title and state, drawn for whoever may see the event."""
    event = await access.get_viewable_event(session, subject, event_id)
    status = EventStatus(event.status)
    body = (
        environment()
        .get_template("poster.svg")
        .render(title=event.title, status_text=_STATE_TEXT[status], status=status.value)
    )
    response = Response(body, media_type="image/svg+xml")
    return finish(request, response)


@router.post("/watch/{event_id}/beacons", status_code=202)
async def beacons(
    event_id: uuid.UUID,
    body: BeaconBatch,
    request: Request,
    subject: BrowserSubject,
    state: State,
    meta: Meta,
) -> Response:
    """The player's QoE beacons (startup, watch time, rebuffering, bitrate), for the signed-in
    or anonymous viewer of this browser: the analytics service `POST
    /api/analytics/events/{id}/beacons` calls, with the cookie session instead of a bearer."""
    accepted = await analytics.ingest_beacons(state, subject, event_id, body, meta.ip)
    answer = BeaconsAccepted(accepted=accepted).model_dump_json()
    return finish(request, Response(answer, 202, media_type="application/json"))
