"""The studio's analytics panel for one event: its figures (viewers now and at peak, unique
viewers, watch time, chat, reactions, QoE) and per-minute charts of viewers and chat, during
and after the event, and the per-minute timeline as CSV.

The figures are `analytics.service.event_analytics` (`GET /api/analytics/events/{id}`) and the
CSV `analytics.service.timeline_csv` (`GET /api/analytics/events/{id}/timeline.csv`), with the
same rule of who may read them (the event's managers, the tenant's moderators and admins).
Charts are SVG polylines drawn on the server: no script, nothing to load.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from bigfootlive.analytics import service as analytics
from bigfootlive.deps import ReadSession, State
from bigfootlive.routing import JsonRoute
from bigfootlive.web.charts import polyline_chart
from bigfootlive.web.render import finish, page
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


def _per_minute(values: list[float]) -> dict[str, object] | None:
    return polyline_chart(list(enumerate(values)))


@router.get("/analytics")
async def event_analytics(
    event_id: uuid.UUID,
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: ReadSession,
) -> Response:
    """The panel (the studio page loads it with htmx, and refreshes it while live)."""
    me = _streamer(request, subject)  # SignInRequired: to the sign-in page
    report = await analytics.event_analytics(state, session, me, event_id)
    timeline = report.timeline
    context = {
        "event_id": event_id,
        "event_title": report.title,
        "report": report,
        "viewers_chart": _per_minute([float(p.viewers) for p in timeline]),
        "chat_chart": _per_minute([float(p.chat_messages) for p in timeline]),
        "minutes": len(timeline),
    }
    return page(request, "studio/analytics.html", context)


@router.get("/analytics.csv")
async def timeline_csv(
    event_id: uuid.UUID, request: Request, subject: BrowserSubject, session: ReadSession
) -> Response:
    """The per-minute timeline (minute, viewers, views started, watch time, chat, ...)."""
    me = _streamer(request, subject)  # SignInRequired: to the sign-in page
    body = await analytics.timeline_csv(session, me, event_id)
    disposition = f'attachment; filename="event-{event_id}-timeline.csv"'
    answer = Response(
        body, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": disposition}
    )
    return finish(request, answer)
