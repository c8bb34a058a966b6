"""Delivery authorization: may this viewer fetch this playlist, segment, ladder or VOD file?

`GET /api/media/authorize` is nginx's `auth_request` target (the generated configuration in
streaming/managed/nginx_conf.py calls it for every media file it serves): it answers 200 to
allow, 401 when a playback token is needed and missing, 403 when it is refused. The media file
is named by `X-Original-URI` (the viewer's request line):

| path | scope |
|---|---|
| `/hls/<playback id>.m3u8`, `/hls/<playback id>-<n>.ts` | live HLS (nginx-rtmp) |
| `/live/<playback id>/...` | the ABR ladder |
| `/live/<playback id>.m3u8`, `-<n>.ts`, `.flv` | SRS's HTTP server (nginx in front of it) |
| `/vod/<event id>/...` | the recording, published as VOD |

`public` events are open. `tenant` and `private` events need the signed playback token of the
event (events/playback.py, issued by `GET /api/streaming/events/{id}/stream`), short-lived and
bound to the event and its playback id, given as `?token=` (forwarded by nginx as
`X-Playback-Token`) or in a cookie `bfl_playback_<playback id>` (for VOD also
`bfl_playback_<event id>`) or `bfl_playback`. Allowed decisions say how long nginx may cache
them (`X-Accel-Expires`: MEDIA_AUTH_CACHE_SECONDS, never past the token's expiry); nginx keys its
cache on the playback id (or event id) and the token, so a decision is shared by every segment.

The caller authenticates like a media-server callback: the managed media server's credential or
an API key in `X-API-Key` (a tenant key answers for its tenant's events only).
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass

import structlog
from fastapi import APIRouter, Request, Response

from bigfootlive.apikeys.service import ApiPrincipal
from bigfootlive.composition import AppState
from bigfootlive.deps import app_state
from bigfootlive.errors import Forbidden, Unauthorized
from bigfootlive.events import keys
from bigfootlive.events.cache import EventRef
from bigfootlive.events.playback import InvalidPlaybackToken
from bigfootlive.events.schemas import Visibility
from bigfootlive.routing import JsonRoute
from bigfootlive.streaming.managed import credential
from bigfootlive.tenants import service as tenants

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/media", tags=["streaming"], route_class=JsonRoute)

COOKIE_PREFIX = "bfl_playback"
_PATH = re.compile(
    r"^/(?:hls/(?P<hls>[A-Za-z0-9_]+?)(?:-[0-9]+)?\.(?:m3u8|ts)"
    r"|live/(?P<ladder>[A-Za-z0-9_]+)/[A-Za-z0-9_./-]+"
    r"|live/(?P<srs>[A-Za-z0-9_]+?)(?:-[0-9]+)?\.(?:m3u8|ts|flv)"
    r"|vod/(?P<vod>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/[A-Za-z0-9_./-]+)$"
)


class UnknownMedia(Forbidden):
    code = "unknown_media"
    message = "No such stream or recording"


class PlaybackTokenRequired(Unauthorized):
    code = "playback_token_required"
    message = "A playback token is required for this event (?token= or a bfl_playback cookie)"


def _scope(original_uri: str) -> tuple[str | None, uuid.UUID | None]:
    """(playback id, event id) named by a media path; both None when it is not one."""
    path = original_uri.split("?", 1)[0]
    if ".." in path or "//" in path:
        return None, None
    match = _PATH.match(path)
    if match is None:
        return None, None
    if match["vod"]:
        return None, uuid.UUID(match["vod"])
    return match["hls"] or match["ladder"] or match["srs"], None


def _token(request: Request, ref: EventRef) -> str | None:
    token = request.headers.get("x-playback-token") or request.query_params.get("token")
    if token:
        return token
    cookies = request.cookies
    for name in (f"{COOKIE_PREFIX}_{ref.playback_id}", f"{COOKIE_PREFIX}_{ref.id}", COOKIE_PREFIX):
        if cookies.get(name):
            return cookies[name]
    return None


@dataclass(frozen=True, slots=True)
class _Known:
    ref: EventRef | None
    tenant_active: bool


class _Memo:
    """What the decision reads (the event snapshot and its tenant's status), kept in the
    process for a moment: nginx asks once per stream and token, but many viewers with many
    tokens ask about the same stream. Bounded; at most _MEMO_SECONDS stale on top of the
    shared cache (a visibility change or a deactivated tenant)."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self.entries: dict[tuple[str | None, uuid.UUID | None], tuple[float, _Known]] = {}

    def get(self, key: tuple[str | None, uuid.UUID | None], now: float) -> _Known | None:
        found = self.entries.get(key)
        if found is None or found[0] <= now:
            return None
        return found[1]

    def put(self, key: tuple[str | None, uuid.UUID | None], value: _Known, until: float) -> None:
        if len(self.entries) >= self.size:
            self.entries.clear()
        self.entries[key] = (until, value)


_MEMO_SECONDS = 2.0


async def _lookup(state: AppState, playback_id: str | None, event_id: uuid.UUID | None) -> _Known:
    async with state.db.sessionmaker() as session:  # used on a cache miss only
        if playback_id is not None:
            ref = await keys.find_by_playback_id(state, playback_id)
        elif event_id is not None:
            ref = await keys.find_ref(state, session, event_id)
        else:
            ref = None
        active = ref is not None and await tenants.is_active(state, session, ref.tenant_id)
    return _Known(ref, active)


async def _known(
    state: AppState, memo: _Memo, playback_id: str | None, event_id: uuid.UUID | None
) -> _Known:
    key = (playback_id, event_id)
    now = time.monotonic()
    known = memo.get(key, now)
    if known is None:
        known = await _lookup(state, playback_id, event_id)
        memo.put(key, known, now + min(_MEMO_SECONDS, state.settings.stream_lookup_cache_seconds))
    return known


async def decide(
    state: AppState, memo: _Memo, principal: ApiPrincipal, request: Request, original_uri: str
) -> int:
    """Seconds the allowed decision may be cached; raises the refusal."""
    playback_id, event_id = _scope(original_uri)
    if playback_id is None and event_id is None:
        raise UnknownMedia()
    known = await _known(state, memo, playback_id, event_id)
    ref = known.ref
    if ref is None or not principal.may_act_for(ref.tenant_id) or not known.tenant_active:
        raise UnknownMedia()
    ttl = int(state.settings.media_auth_cache_seconds)
    if ref.visibility == Visibility.PUBLIC:
        return ttl
    token = _token(request, ref)
    if not token:
        raise PlaybackTokenRequired()
    claims = state.playback_tokens.verify_for(token, ref.id)  # InvalidPlaybackToken: 403
    if claims.playback_id != ref.playback_id:
        raise InvalidPlaybackToken()
    return max(0, min(ttl, claims.expires_at - int(time.time())))


@router.get("/authorize", include_in_schema=True, responses={401: {}, 403: {}})
async def authorize(request: Request) -> Response:
    """nginx `auth_request`: 200 lets the media file through, 401/403 refuse it."""
    state = app_state(request)
    memo: _Memo | None = getattr(request.app.state, "bfl_delivery_memo", None)
    if memo is None:
        memo = request.app.state.bfl_delivery_memo = _Memo()
    principal = await credential.principal(state, request.headers.get("x-api-key"))
    original = request.headers.get("x-original-uri", "")
    try:
        ttl = await decide(state, memo, principal, request, original)
    except (Unauthorized, Forbidden) as exc:
        log.info("media_delivery_refused", code=exc.code)
        raise
    return Response(b"", 200, {"X-Accel-Expires": str(ttl)}, media_type="text/plain")
