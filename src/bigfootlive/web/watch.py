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
from bigfootlive.chat import reads
from bigfootlive.containers import repository as recordings_repo
from bigfootlive.deps import Meta, ReadSession, State
from bigfootlive.events import access
from bigfootlive.events.playback import hls_url, viewer_token, with_token
from bigfootlive.events.schemas import EventStatus
from bigfootlive.routing import JsonRoute
from bigfootlive.web.render import finish, page
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
    recent, _ = await reads.history(session, event, cursor=None, limit=30)
    return page(
        request,
        "watch.html",
        {
            "event": event,
            "messages": list(reversed(recent)),
            "status": status.value,
            "status_text": _STATE_TEXT[status],
            "hls_url": with_token(hls_url(state.settings, event.playback_id), token),
            "vod_url": vod,
            "scheduled": event.scheduled_start.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
            if event.scheduled_start
            else None,
        },
    )


@router.post("/watch/{event_id}/beacons", status_code=202)
async def beacons(
    event_id: uuid.UUID,
    body: BeaconBatch,
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: ReadSession,
    meta: Meta,
) -> Response:
    """The player's QoE beacons (startup, watch time, rebuffering, bitrate), for the signed-in
    or anonymous viewer of this browser: the analytics service `POST
    /api/analytics/events/{id}/beacons` calls, with the cookie session instead of a bearer."""
    accepted = await analytics.ingest_beacons(state, session, subject, event_id, body, meta.ip)
    answer = BeaconsAccepted(accepted=accepted).model_dump_json()
    return finish(request, Response(answer, 202, media_type="application/json"))
