"""The watch page of an event, and the QoE beacons its player sends.

The page is refused (404, as the API does) to whoever may not see the event
(`events.access.get_viewable_event`); a viewer of a tenant or private event gets the same
short-lived playback token `GET /api/streaming/events/{id}/stream` gives, which nginx's delivery
authorization (`GET /api/media/authorize`) checks on every playlist and segment.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from bigfootlive.analytics import service as analytics
from bigfootlive.analytics.schemas import BeaconBatch, BeaconsAccepted
from bigfootlive.composition import AppState
from bigfootlive.containers import repository as recordings_repo
from bigfootlive.containers.live_files import live_files
from bigfootlive.containers.storage import public_url
from bigfootlive.deps import Meta, ReadSession, State
from bigfootlive.events import access
from bigfootlive.events import repository as event_repo
from bigfootlive.events.cache import EventRef
from bigfootlive.events.latency import player_settings
from bigfootlive.events.playback import dvr_url, hls_url, thumbnail_url, viewer_token, with_token
from bigfootlive.events.schemas import EventStatus, LatencyMode
from bigfootlive.identity import repository as identity_repo
from bigfootlive.kit.moment import Moment
from bigfootlive.kit.singleflight import SingleFlight
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
    thumbnail = thumbnail_url(state.settings, event.playback_id) if on_air else None
    url = hls_url(state.settings, event.playback_id, event.latency_mode)
    # the transcoder's ladder (as the API's abr_master_url), for the quality menu
    abr = (
        with_token(public_url(state.settings, f"live/{event.playback_id}/master.m3u8"), token)
        if state.settings.container_transcoder
        else None
    )
    dvr = rewind and with_token(rewind, token)
    hls = with_token(url, token)
    thumbnail = thumbnail and with_token(thumbnail, token)
    urls = {"dvr": dvr, "abr": abr, "hls": hls, "thumbnail": thumbnail}
    # what is there yet (the first seconds on air): the player and the poster ask for nothing
    # else; watch.mjs asks /watch/{id}/playable for the rest
    there = (
        live_files(state.settings, event.id, event.playback_id, event.latency_mode).ready()
        if status.is_on_air
        else []
    )
    ready = [name for name in there if urls[name]]
    # the playlist the player starts with (watch.mjs startUrl), fetched with the page
    first = next(name for name in ("dvr", "abr", "hls") if urls[name])
    preload = urls[first] if status == EventStatus.LIVE and first in ready else None
    poster = (
        thumbnail
        if "thumbnail" in ready
        else event.poster_url and with_token(event.poster_url, token)
    )
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
            "hls_url": hls,
            "player": player_settings(
                state.settings,
                LatencyMode(event.latency_mode),
                event.dvr_window_seconds if rewind else 0,
            ).hls_js,
            "abr_url": abr,
            "vod_url": vod,
            "dvr_url": dvr,
            "ready": " ".join(ready),
            "preload_url": preload,
            "thumbnail_url": thumbnail,
            "poster_url": poster,
            "scheduled": event.scheduled_start.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
            if event.scheduled_start
            else None,
        },
    )


# At go-live every waiting viewer's player asks /playable about twice a second: what it needs
# of the event, and which files are there, is kept per process for a moment, so a popular
# event costs one query (and a few stat calls) per process per moment, not one per viewer.
# Staleness: a player may start up to this much later; a visibility change reaches /playable
# as late (the files themselves are authorized on every request, `streaming.delivery`).
PLAYABLE_SECONDS = 0.25
_PLAYABLE_MEMO = "web.playable"


@dataclass(frozen=True, slots=True)
class _Playable:
    ref: EventRef
    body: bytes  # the answer to whoever may view `ref`


async def _playable_of(state: AppState, event_id: uuid.UUID) -> _Playable:
    memo: Moment[_Playable] = Moment.kept_in(state.db.batches, _PLAYABLE_MEMO)
    kept = memo.get(event_id)
    if kept is not None:
        return kept
    loads = SingleFlight[_Playable].kept_in(state.db.batches, "web.playable_load")
    return await loads(event_id, lambda: _load_playable(state, memo, event_id))


async def _load_playable(
    state: AppState, memo: Moment[_Playable], event_id: uuid.UUID
) -> _Playable:
    """In a session of its own: the load is shared by the requests asking at once."""
    async with state.db.sessionmaker() as session:
        event = await event_repo.get_for_visibility_check(session, event_id)
    if event is None:
        raise access.EventNotFound()
    status = EventStatus(event.status)
    files: dict[str, bool | None] = {"hls": False, "abr": False, "dvr": False, "thumbnail": False}
    if status.is_on_air:
        found = live_files(state.settings, event.id, event.playback_id, event.latency_mode)
        files = found.as_dict()
    body = json.dumps({"status": status.value, **files}).encode()
    return memo.put(event_id, _Playable(EventRef.of(event), body), PLAYABLE_SECONDS)


@router.get("/watch/{event_id}/playable")
async def playable(
    event_id: uuid.UUID,
    request: Request,
    subject: BrowserSubject,
    state: State,
) -> Response:
    """What the watch page's player may ask the origin for yet, for whoever may see the event:
    `{"status": ..., "hls": ..., "abr": ..., "dvr": ..., "thumbnail": ...}`, each true (there),
    false (not yet: a request would be a 404) or null (this server cannot tell). watch.mjs asks
    it in the first seconds on air instead of asking the origin for files that are not there.
    Answered from a snapshot at most `PLAYABLE_SECONDS` old (see above); 404 to whoever may not
    view the event, as the page."""
    found = await _playable_of(state, event_id)
    if not access.can_view(subject, found.ref):
        raise access.EventNotFound()
    return finish(request, Response(found.body, media_type="application/json"))


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
