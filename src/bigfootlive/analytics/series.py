"""Day-by-day figures for the dashboards' charts and exports: minutes watched, unique viewers,
chat messages and the compute of event containers, for one tenant or the whole platform.

Days are UTC days; the last one is today (so far). Container-seconds are counted on the day
the container started (a container's running total is kept on its row, not per day)."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.analytics import repository as repo
from bigfootlive.authz.scoping import scoped
from bigfootlive.models import EventContainer

PERIODS = (7, 30, 90)


class Day(BaseModel):
    day: dt.date
    minutes_watched: float
    unique_viewers: int
    chat_messages: int
    events: int
    container_seconds: float


async def _container_seconds(
    session: AsyncSession, tenant_id: uuid.UUID | None, since: dt.datetime, until: dt.datetime
) -> float:
    stmt = select(func.coalesce(func.sum(EventContainer.container_seconds), 0.0)).where(
        EventContainer.started_at >= since, EventContainer.started_at < until
    )
    if tenant_id is not None:
        stmt = scoped(stmt, EventContainer, tenant_id)
    return float((await session.execute(stmt)).scalar_one())


async def daily(
    session: AsyncSession, tenant_id: uuid.UUID | None, days: int, now: dt.datetime
) -> list[Day]:
    """`days` days up to today, oldest first; `tenant_id` None: every tenant (platform)."""
    today = dt.datetime.combine(now.astimezone(dt.UTC).date(), dt.time(), tzinfo=dt.UTC)
    out = []
    for back in range(days - 1, -1, -1):
        since = today - dt.timedelta(days=back)
        until = since + dt.timedelta(days=1)
        watch_ms, chat, events, viewers = await repo.period(session, tenant_id, since, until)
        out.append(
            Day(
                day=since.date(),
                minutes_watched=round(watch_ms / 60_000, 2),
                unique_viewers=viewers,
                chat_messages=chat,
                events=events,
                container_seconds=round(
                    await _container_seconds(session, tenant_id, since, until), 3
                ),
            )
        )
    return out


CSV_COLUMNS = (
    "day",
    "minutes_watched",
    "unique_viewers",
    "chat_messages",
    "events",
    "container_seconds",
)


def to_csv(days: list[Day]) -> str:
    lines = [",".join(CSV_COLUMNS)]
    for d in days:
        row = d.model_dump(mode="json")
        lines.append(",".join(str(row[c]) for c in CSV_COLUMNS))
    return "\r\n".join(lines) + "\r\n"
