from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, ValidationError
from starlette.types import Receive, Scope

from bigfootlive.analytics import service
from bigfootlive.analytics.schemas import (
    BeaconBatch,
    BeaconsAccepted,
    Dashboard,
    EventAnalytics,
    HealthPage,
    PlatformAnalytics,
    PlatformStats,
)
from bigfootlive.authz.deps import (
    CurrentSubject,
    OptionalSubject,
    PlatformAdmin,
    authenticate,
    bearer_token,
)
from bigfootlive.deps import Meta, ReportSession, State, app_state
from bigfootlive.direct_http import Answer
from bigfootlive.kit.net import client_ip
from bigfootlive.routing import JsonRoute

router = APIRouter(prefix="/api/analytics", tags=["analytics"], route_class=JsonRoute)
# The beacon route alone, included first by `create_app` (see there): the players' hottest
# request pays no failed matches of the analytics router's other routes (no path overlaps: it
# is the only POST under /api/analytics/events/{id}/beacons).
beacon_router = APIRouter(prefix="/api/analytics", tags=["analytics"], route_class=JsonRoute)
platform_router = APIRouter(prefix="/api/platform", tags=["platform"], route_class=JsonRoute)


# ---- the beacon route --------------------------------------------------------------------
# The route of `POST /api/analytics/events/{id}/beacons`, the busiest write of the API.
#
# Players send a batch every 10-30 s each, so a large audience is thousands of requests a second
# into one path. FastAPI's generic handler (dependency resolution, a JSON parse then a model
# validation of the parsed objects, the response model's validation and serialization) cost more
# than the work itself. `BeaconRoute` keeps the route as declared, documented and matched by the
# router, behind the same middleware and exception handlers, and answers it by hand: the body is
# parsed and validated in one pydantic-core pass (`BeaconBatch.model_validate_json`), the bearer
# token (if any) is checked as `authz.deps.optional_subject` checks it, and the service does what
# it does for every caller (the event's visibility, the anonymous viewer's admission, both rate
# limits, the in-memory aggregation). Errors are raised as the generic path raises them, so they
# reach the app's handlers and answer the same JSON: 422 `validation_error` (with FastAPI's
# `loc`s), 400 `malformed_json`, 404, 409, 429.

_BOM = b"\xef\xbb\xbf"


def _invalid(exc: ValidationError, where: str) -> RequestValidationError:
    """Pydantic's errors with FastAPI's `loc` (prefixed by where the value came from)."""
    return RequestValidationError(
        [
            {"type": e["type"], "loc": (where, *e["loc"]), "msg": e["msg"], "input": e["input"]}
            for e in exc.errors(include_url=False)
        ]
    )


def _is_json(content_type: str | None) -> bool:
    """FastAPI's rule: a body without a content type, or one of `application/json` or
    `application/*+json`, is parsed as JSON; any other is not (and fails validation)."""
    if not content_type:
        return True
    kind = content_type.partition(";")[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


async def _batch(request: Request) -> BeaconBatch:
    body = await request.body()
    if not body:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    if not _is_json(request.headers.get("content-type")):
        raise RequestValidationError(
            [
                {
                    "type": "model_attributes_type",
                    "loc": ("body",),
                    "msg": "Input should be a valid JSON object",
                    "input": None,
                }
            ]
        )
    if body.startswith(_BOM):
        body = body[len(_BOM) :]
    try:
        return BeaconBatch.model_validate_json(body)
    except ValidationError as exc:
        raise _invalid(exc, "body") from None


def _event_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise RequestValidationError(
            [
                {
                    "type": "uuid_parsing",
                    "loc": ("path", "event_id"),
                    "msg": "Input should be a valid UUID",
                    "input": raw,
                }
            ]
        ) from None


async def _accept(request: Request, raw_event_id: str) -> bytes:
    """The 202 body of a beacon request (`{"accepted": n}`), or the error its route raises."""
    state = app_state(request)
    token = bearer_token(request)  # checked first, as FastAPI solves the dependencies first
    subject = None if token is None else await authenticate(state, token)
    event_id = _event_id(raw_event_id)
    batch = await _batch(request)
    ip = client_ip(request, state.settings.trusted_proxies)
    accepted = await service.ingest_beacons(state, subject, event_id, batch, ip)
    return b'{"accepted":%d}' % accepted


async def answer_beacons(request: Request) -> Response:
    body = await _accept(request, request.path_params["event_id"])
    return Response(body, 202, media_type="application/json")


_PATH_START, _PATH_END = "/api/analytics/events/", "/beacons"
_JSON = [(b"content-type", b"application/json")]


class DirectBeacons:
    """The beacon route past the HTTP stack (`direct_http.DirectHttp`, which does what the
    stack's layers do for it): the same answer as `answer_beacons`, for the same requests
    (`POST`, an event id as the router matches `{event_id}`: one path segment)."""

    __slots__ = ()
    template = "/api/analytics/events/{event_id}/beacons"

    def matches(self, path: str) -> bool:
        if not (path.startswith(_PATH_START) and path.endswith(_PATH_END)):
            return False
        event_id = path[len(_PATH_START) : -len(_PATH_END)]
        return bool(event_id) and "/" not in event_id

    async def prepare(self, scope: Scope, receive: Receive, max_bytes: int) -> tuple[str, Receive]:
        return scope["path"][len(_PATH_START) : -len(_PATH_END)], receive

    async def answer(self, request: Request, event_id: str) -> Answer:
        request.scope["path_params"] = {"event_id": event_id}
        return Answer(202, _JSON, await _accept(request, event_id))


class BeaconRoute(JsonRoute):
    """Declared like any endpoint (its signature documents it); answered by `answer_beacons`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return answer_beacons


async def post_beacons(
    event_id: uuid.UUID,
    body: BeaconBatch,
    subject: OptionalSubject,
    state: State,
    meta: Meta,
) -> BeaconsAccepted:
    """Player beacons (start, heartbeat, stop with QoE); anonymous viewers of public events too.

    Documents the route; `BeaconRoute` answers it the same way without FastAPI's generic
    handler (analytics.beacon_route)."""
    accepted = await service.ingest_beacons(state, subject, event_id, body, meta.ip)
    return BeaconsAccepted(accepted=accepted)


beacon_router.add_api_route(
    "/events/{event_id}/beacons",
    post_beacons,
    methods=["POST"],
    status_code=status.HTTP_202_ACCEPTED,
    route_class_override=BeaconRoute,
)


@router.get("/events/{event_id}")
async def event_analytics(
    event_id: uuid.UUID, subject: CurrentSubject, state: State, session: ReportSession
) -> EventAnalytics:
    return await service.event_analytics(state, session, subject, event_id)


@router.get("/events/{event_id}/health")
async def event_health(
    event_id: uuid.UUID,
    subject: CurrentSubject,
    session: ReportSession,
    before: Annotated[
        AwareDatetime | None,
        Query(description="Only minutes before this one (a page's next_before)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_HEALTH_PAGE)] = 60,
) -> HealthPage:
    """Stream health per minute (worst verdict, reasons, bitrate, fps, size), a page at a time:
    the latest `limit` minutes, oldest first."""
    return await service.health_history(session, subject, event_id, before=before, limit=limit)


@router.get(
    "/events/{event_id}/timeline.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def event_timeline_csv(
    event_id: uuid.UUID, subject: CurrentSubject, session: ReportSession
) -> Response:
    body = await service.timeline_csv(session, subject, event_id)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="event-{event_id}-timeline.csv"'},
    )


@router.get("/dashboard")
async def dashboard(subject: CurrentSubject, session: ReportSession) -> Dashboard:
    return await service.dashboard(session, subject)


@router.get("/platform")
async def platform(_: PlatformAdmin, state: State, session: ReportSession) -> PlatformAnalytics:
    return await service.platform_analytics(state, session)


@platform_router.get("/stats")
async def platform_stats(_: PlatformAdmin, state: State, session: ReportSession) -> PlatformStats:
    return await service.platform_stats(state, session)
