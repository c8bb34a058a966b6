"""The tenant admin console's dashboard (issue 16): the tenant's live events now with their
viewers, and day by day over a chosen period (7, 30 or 90 days) the minutes watched, unique
viewers, chat messages and event-container compute, as charts, a table and a CSV export.

Tenant admins (`analytics:tenant`); the figures are the tenant's own (row-level scoped reads
through `analytics.series`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from bigfootlive.analytics import ingest, series
from bigfootlive.authz.roles import Permission
from bigfootlive.db import utcnow
from bigfootlive.deps import ReadSession, State
from bigfootlive.events import crud
from bigfootlive.events.schemas import EventStatus
from bigfootlive.routing import JsonRoute
from bigfootlive.web.guard import console_admin
from bigfootlive.web.platform import chart
from bigfootlive.web.render import finish, page
from bigfootlive.web.security import check_csrf
from bigfootlive.web.session import BrowserSubject

router = APIRouter(
    prefix="/admin",
    tags=["web"],
    route_class=JsonRoute,
    include_in_schema=False,
    dependencies=[Depends(check_csrf)],
)

Days = Annotated[int, Query(ge=1, le=90)]


def _period(days: int) -> int:
    return days if days in series.PERIODS else 7


@router.get("/dashboard")
async def dashboard(
    request: Request, subject: BrowserSubject, state: State, session: ReadSession, days: Days = 7
) -> Response:
    admin = console_admin(subject, Permission.ANALYTICS_TENANT)
    days = _period(days)
    now = utcnow()
    live = await crud.list_events(
        session, admin, statuses=[EventStatus.LIVE, EventStatus.RECONNECTING], owner_id=None,
        cursor=None, limit=50,
    )  # fmt: skip
    on_air = [(e, await ingest.viewers_now(state.cache, e.id, now)) for e in live[:50]]
    figures = await series.daily(session, admin.tenant_id, days, now)
    totals = {
        "minutes_watched": round(sum(d.minutes_watched for d in figures), 2),
        "unique_viewers": sum(d.unique_viewers for d in figures),
        "container_seconds": round(sum(d.container_seconds for d in figures), 3),
    }
    return page(
        request,
        "admin/dashboard.html",
        {
            "on_air": on_air,
            "viewers_now": sum(v for _, v in on_air),
            "days": days,
            "periods": series.PERIODS,
            "figures": figures,
            "totals": totals,
            "watch_chart": chart(
                figures, {"minutes_watched": "Minutes watched", "unique_viewers": "Viewers"}
            ),
            "compute_chart": chart(figures, {"container_seconds": "Container-seconds"}),
        },
    )


@router.get("/dashboard.csv")
async def dashboard_csv(
    request: Request, subject: BrowserSubject, session: ReadSession, days: Days = 7
) -> Response:
    """The dashboard's day-by-day figures as CSV (one row a day, oldest first)."""
    admin = console_admin(subject, Permission.ANALYTICS_TENANT, back="/admin/dashboard")
    days = _period(days)
    figures = await series.daily(session, admin.tenant_id, days, utcnow())
    response = Response(series.to_csv(figures), media_type="text/csv; charset=utf-8")
    name = f"usage-{days}d-{figures[-1].day.isoformat()}.csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return finish(request, response)
