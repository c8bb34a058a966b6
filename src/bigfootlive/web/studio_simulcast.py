"""The studio's simulcast panel for one event: each destination (name, platform, masked key)
with its state (connecting, live, retrying, failed, stopped, idle), the reason of a failure and
its attempts, refreshed every few seconds while the page is open. The same list as `GET
/api/events/{id}/simulcast` (`events.simulcast.list_destinations`: the event's managers only;
keys go in through the API and never come out). Destinations are added through the API."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from bigfootlive.deps import ReadSession
from bigfootlive.events import simulcast
from bigfootlive.routing import JsonRoute
from bigfootlive.web.render import page
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


@router.get("/simulcast")
async def destinations(
    event_id: uuid.UUID, request: Request, subject: BrowserSubject, session: ReadSession
) -> Response:
    me = _streamer(request, subject)  # SignInRequired: to the sign-in page
    rows = await simulcast.list_destinations(session, me, event_id)
    items = [simulcast.destination_out(row) for row in rows]
    return page(request, "studio/simulcast.html", {"event_id": event_id, "items": items})
