"""Media-server callbacks (fixed URL per server type + a generic per-event webhook), the
playback configuration and stream health."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import ClientDisconnect

from bigfootlive.apikeys import service as apikeys
from bigfootlive.apikeys.service import ApiPrincipal
from bigfootlive.authz.deps import CurrentSubject, OptionalSubject
from bigfootlive.authz.roles import Role
from bigfootlive.composition import AppState
from bigfootlive.containers import repository as recordings_repo
from bigfootlive.containers.live_files import live_files
from bigfootlive.containers.storage import public_url
from bigfootlive.deps import DbSession, ReadSession, State, app_state
from bigfootlive.direct_http import Answer, content_type, unprepared
from bigfootlive.errors import BadRequest, Forbidden
from bigfootlive.events import access, keys
from bigfootlive.events.latency import player_settings
from bigfootlive.events.playback import (
    dvr_url,
    hls_url,
    ingest_for,
    thumbnail_url,
    viewer_token,
    with_token,
)
from bigfootlive.events.schemas import EventStatus, LatencyMode, Visibility
from bigfootlive.kit import jsonparse
from bigfootlive.kit.backends.prefetch import PrefetchedCache
from bigfootlive.routing import JsonRoute
from bigfootlive.streaming import feedback, service
from bigfootlive.streaming.base import (
    BadCallback,
    CallbackKind,
    MediaCallback,
    MediaServerAdapter,
    Reply,
    query_args,
)
from bigfootlive.streaming.managed import credential
from bigfootlive.streaming.mediamtx import MediaMtxAdapter
from bigfootlive.streaming.nginx_rtmp import NginxRtmpAdapter
from bigfootlive.streaming.node_media_server import NodeMediaServerAdapter
from bigfootlive.streaming.schemas import (
    StreamConfig,
    StreamHealth,
    TokenRules,
    WebhookIn,
    WebhookOut,
)
from bigfootlive.streaming.srs import SrsAdapter

router = APIRouter(prefix="/api/streaming", tags=["streaming"], route_class=JsonRoute)


def _authorization_key(value: str) -> str | None:
    """`Bearer <key>`, or `Basic` with the key as password: what an HTTP client sends for a
    callback URL `http://media:<key>@api/...` (Go's client, hence MediaMTX, redacts it in logs)."""
    scheme, _, credentials = value.strip().partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def _secret(request: Request) -> str | None:
    # A header keeps the key out of URLs the media server logs (docs/streaming.md says how for
    # each server); ?api_key= stays for media servers that can neither set a header nor go
    # through a proxy that adds one. The managed media server's own credential comes in the
    # header (streaming/managed/credential.py).
    return (
        request.headers.get("x-api-key")
        or _authorization_key(request.headers.get("authorization", ""))
        or request.query_params.get("api_key")
    )


async def _principal(request: Request, state: State) -> ApiPrincipal:
    return await credential.principal(state, _secret(request))


MediaServer = Annotated[ApiPrincipal, Depends(_principal)]


async def _fields(request: Request) -> Mapping[str, object]:
    content_type = request.headers.get("content-type", "")
    try:
        raw = await request.body()
    except ClientDisconnect as exc:  # the media server gave up; nothing to answer
        raise BadRequest("The client went away", code="client_disconnected") from exc
    if content_type.startswith("application/x-www-form-urlencoded"):
        try:
            return query_args(raw.decode())
        except UnicodeDecodeError as exc:
            raise BadRequest("The callback body is not UTF-8", code="bad_callback") from exc
    try:
        body = jsonparse.loads(raw or b"null")
    except jsonparse.MalformedJson as exc:
        raise BadRequest("The callback body is not valid JSON", code="malformed_json") from exc
    if not isinstance(body, dict):
        raise BadRequest("The callback body must be a JSON object", code="bad_callback")
    return body


async def _callback(
    adapter: MediaServerAdapter, request: Request, state: State, secret: str | None
) -> MediaCallback:
    try:
        fields = await _fields(request)
        return adapter.parse(fields)
    except (BadCallback, BadRequest) as exc:
        # A caller without a valid credential hears 401 whatever it sent.
        await credential.principal(state, secret)
        if isinstance(exc, BadRequest):
            raise
        raise BadRequest(str(exc), code="bad_callback") from exc


async def _handle(adapter: MediaServerAdapter, request: Request) -> Reply:
    """One cache round trip for the credential and every entry the decision reads. The hooks
    take no FastAPI dependencies (the per-request bookkeeping of a dependency graph costs more
    than a callback's decision): the unit of work is that of `Database.transaction`, committed
    before the answer is sent, as `DbSession` would, with its session made on demand."""
    state = app_state(request)
    async with state.db.transaction(on_demand=True) as session:
        return await _decide(adapter, request, state, session)


async def _decide(
    adapter: MediaServerAdapter, request: Request, state: AppState, session: AsyncSession
) -> Reply:
    secret = _secret(request)
    if secret is None or not secret.startswith((credential.PREFIX, apikeys.KEY_PREFIX)):
        await credential.principal(state, secret)  # refused before the body is read
    callback = await _callback(adapter, request, state, secret)
    entries = service.cache_entries(state, callback)
    api_key_entry = apikeys.cache_key(secret)
    if api_key_entry is not None:
        entries.append(api_key_entry)
    view = await PrefetchedCache.load(state.cache, entries)
    principal = await credential.principal(state, secret, cache=view)
    decision = await service.decide(state, session, principal, callback, via=view)
    return adapter.reply(callback, decision)


def _response(reply: Reply) -> Response:
    return Response(reply.body, reply.status, dict(reply.headers), media_type=reply.media_type)


def _nginx_rtmp(state: AppState) -> MediaServerAdapter:
    return NginxRtmpAdapter(f"rtmp://127.0.0.1:{state.settings.rtmp_port}/live")


def _srs(_: AppState) -> MediaServerAdapter:
    return SrsAdapter()


def _mediamtx(_: AppState) -> MediaServerAdapter:
    return MediaMtxAdapter()


def _node_media_server(_: AppState) -> MediaServerAdapter:
    return NodeMediaServerAdapter()


@router.post("/hooks/nginx-rtmp", include_in_schema=True)
async def nginx_rtmp_hook(request: Request) -> Response:
    """Every nginx-rtmp `on_*` directive points here; the `call` field says which."""
    return _response(await _handle(_nginx_rtmp(app_state(request)), request))


@router.post("/hooks/srs")
async def srs_hook(request: Request) -> Response:
    """Every SRS `http_hooks` entry points here; the `action` field says which."""
    return _response(await _handle(SrsAdapter(), request))


@router.post("/hooks/mediamtx")
async def mediamtx_hook(request: Request) -> Response:
    """MediaMTX `authHTTPAddress`."""
    return _response(await _handle(MediaMtxAdapter(), request))


@router.post("/hooks/node-media-server")
async def node_media_server_hook(request: Request) -> Response:
    """Node Media Server's events, posted by streaming/nms/bigfootlive-nms.js."""
    return _response(await _handle(NodeMediaServerAdapter(), request))


# The hooks above, by path, for `direct_hooks` (below)
HOOKS: dict[str, Callable[[AppState], MediaServerAdapter]] = {
    "/api/streaming/hooks/nginx-rtmp": _nginx_rtmp,
    "/api/streaming/hooks/srs": _srs,
    "/api/streaming/hooks/mediamtx": _mediamtx,
    "/api/streaming/hooks/node-media-server": _node_media_server,
}


_WEBHOOK_KINDS = {
    "publish": CallbackKind.PUBLISH,
    "unpublish": CallbackKind.UNPUBLISH,
    "play": CallbackKind.PLAY,
    "stop": CallbackKind.STOP,
    "publisher_alive": CallbackKind.PUBLISHER_ALIVE,
    "recorded": CallbackKind.RECORDED,
}


@router.post("/events/{event_id}/webhook")
async def generic_webhook(
    event_id: uuid.UUID,
    body: WebhookIn,
    response: Response,
    state: State,
    session: DbSession,
    principal: MediaServer,
) -> WebhookOut:
    """Generic JSON callback for one event; 200 when allowed, 403 when refused."""
    callback = MediaCallback(
        kind=_WEBHOOK_KINDS[body.action],
        client_id=body.client_id,
        stream_key=body.stream_key,
        playback_token=body.playback_token,
        ip=body.ip,
    )
    if callback.kind == CallbackKind.PUBLISH and not body.stream_key:
        raise BadRequest("stream_key is required to publish", code="stream_key_required")
    decision = await service.decide(state, session, principal, callback, event_id=event_id)
    if not decision.allowed:
        response.status_code = 403
    return WebhookOut(allowed=decision.allowed, reason=decision.reason)


@router.get("/events/{event_id}/stream")
async def stream_config(
    event_id: uuid.UUID, subject: OptionalSubject, state: State, session: ReadSession
) -> StreamConfig:
    """HLS URLs for whoever may watch; a playback token for tenant-only and private events;
    the ingest URL and stream key only for the event's owner and admins."""
    event = await access.get_viewable_event(session, subject, event_id)
    url = hls_url(state.settings, event.playback_id, event.latency_mode)
    abr = None
    if state.settings.container_transcoder:
        abr = public_url(state.settings, f"live/{event.playback_id}/master.m3u8")
    recordings = await recordings_repo.recordings_of(session, event.tenant_id, event.id)
    vods = [r.playback_url for r in recordings if r.status == "ready" and r.playback_url]
    on_air = EventStatus(event.status).is_on_air and state.settings.previews_enabled
    thumb = thumbnail_url(state.settings, event.playback_id) if on_air else None
    rewind = on_air and event.dvr_window_seconds > 0
    dvr = dvr_url(state.settings, event.playback_id) if rewind else None
    poster = event.poster_url
    files = None
    if EventStatus(event.status).is_on_air:  # which of the live URLs answer yet
        found = live_files(state.settings, event.id, event.playback_id, event.latency_mode)
        live = (("hls_url", url, found.hls), ("abr_master_url", abr, found.abr))
        previews = (("dvr_url", dvr, found.dvr), ("thumbnail_url", thumb, found.thumbnail))
        files = {name: there for name, given, there in (*live, *previews) if given}
    token = expires = rules = None
    issued = viewer_token(
        state.playback_tokens,
        event_id=event.id,
        playback_id=event.playback_id,
        visibility=event.visibility,
        viewer_id=None if subject is None else subject.user_id,
    )
    if issued is not None:
        token, exp = issued
        expires = dt.datetime.fromtimestamp(exp, dt.UTC)
        url = with_token(url, token)
        abr = None if abr is None else with_token(abr, token)
        vods = [with_token(v, token) for v in vods]
        thumb, dvr, poster = (u and with_token(u, token) for u in (thumb, dvr, poster))
        named = (("abr_master_url", abr), ("dvr_url", dvr), ("thumbnail_url", thumb))
        extra = [n for n, u in (*named, ("poster_url", poster)) if u]
        applies = ["hls_url", *extra, "vod_urls"]
        rules = TokenRules(applies_to=applies, expires_at=expires)
    ingest = refused = None
    if subject is not None and access.can_manage(subject, event):
        key = keys.stream_key_of(state, event)
        ingest = ingest_for(state.settings, event.playback_id, key)
        refused = await feedback.last_refusal(state, event.id)
    return StreamConfig(
        event_id=event.id,
        status=EventStatus(event.status),
        visibility=Visibility(event.visibility),
        playback_id=event.playback_id,
        hls_url=url,
        playback_token=token,
        playback_token_expires_at=expires,
        ingest=ingest,
        last_refused_publish=refused,
        abr_master_url=abr,
        vod_urls=vods,
        dvr_url=dvr,
        thumbnail_url=thumb,
        files_ready=files,
        poster_url=poster,
        token_rules=rules,
        player=player_settings(
            state.settings,
            LatencyMode(event.latency_mode),
            event.dvr_window_seconds if dvr else 0,
        ),
    )


@router.get("/events/{event_id}/health")
async def stream_health(
    event_id: uuid.UUID, subject: CurrentSubject, state: State, session: ReadSession
) -> StreamHealth:
    """For the event's managers and the tenant's moderators."""
    event = await access.get_event(session, subject.tenant_id, event_id)
    if not (access.can_manage(subject, event) or subject.role >= Role.MODERATOR):
        if not access.can_view(subject, event):
            raise access.EventNotFound()
        raise Forbidden(code="not_event_manager")
    status = EventStatus(event.status)
    report = await service.stream_health(state, event)
    return StreamHealth(
        event_id=event.id,
        status=status,
        verdict=report.verdict,
        reasons=report.reasons,
        current=report.current,
        history=report.history,
    )


class DirectHook:
    """A media server's hook (`HOOKS`) answered without the HTTP stack
    (`direct_http.DirectHttp`: the app hands it such a `POST` before FastAPI's layers, our
    middleware, its routing and its endpoint machinery, which cost a callback more than its
    decision). The hook reads its body itself; the routes above stay: the same handlers, and
    the API reference."""

    __slots__ = ("factory",)
    prepare = staticmethod(unprepared)

    def __init__(self, factory: Callable[[AppState], MediaServerAdapter]) -> None:
        self.factory = factory

    async def answer(self, request: Request, prepared: object) -> Answer:
        reply = await _handle(self.factory(app_state(request)), request)
        headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()
        ]
        headers.append((b"content-type", content_type(reply.media_type)))
        return Answer(reply.status, headers, reply.body)


def direct_hooks() -> dict[str, DirectHook]:
    """The hooks by path, for `direct_http.DirectHttp`."""
    return {path: DirectHook(factory) for path, factory in HOOKS.items()}
