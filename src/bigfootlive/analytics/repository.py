from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.analytics.ingest import MINUTE_FIELDS
from bigfootlive.authz.scoping import scoped
from bigfootlive.models import (
    AnalyticsHealthMinute,
    AnalyticsMinute,
    AnalyticsViewer,
    Event,
    EventContainer,
    EventSummary,
    Follow,
    Tenant,
    User,
)


def _insert(session: AsyncSession) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


# One upsert statement per table and dialect, run for all the rows of a roll-up at once
# (executemany). A multi-row VALUES was compiled anew for every chunk (a statement of 500 rows'
# parameters): that compilation was most of a flush's CPU in the API process.
_UPSERTS: dict[tuple[str, str], Any] = {}


def _upsert(session: AsyncSession, table: Any, build: Any) -> Any:
    """The upsert `build(table, insert)` makes for `table`, made once per dialect."""
    key = (table.name, session.get_bind().dialect.name)
    stmt = _UPSERTS.get(key)
    if stmt is None:
        stmt = _UPSERTS[key] = build(table, _insert(session)(table))
    return stmt


def _minutes_upsert(session: AsyncSession) -> Any:
    def build(table: Any, insert: Any) -> Any:
        updates: dict[str, Any] = {f: table.c[f] + insert.excluded[f] for f in MINUTE_FIELDS}
        updates["viewers"] = case(
            (insert.excluded.viewers > table.c.viewers, insert.excluded.viewers),
            else_=table.c.viewers,
        )
        return insert.on_conflict_do_update(index_elements=["event_id", "minute"], set_=updates)

    return _upsert(session, AnalyticsMinute.__table__, build)


def _viewers_upsert(session: AsyncSession) -> Any:
    def build(table: Any, insert: Any) -> Any:
        return insert.on_conflict_do_update(
            index_elements=["event_id", "viewer"],
            set_={"watch_ms": table.c.watch_ms + insert.excluded.watch_ms},
        )

    return _upsert(session, AnalyticsViewer.__table__, build)


async def add_minutes(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Add the sums to each (event, minute) row; `viewers` keeps the largest count seen."""
    if rows:
        await session.execute(_minutes_upsert(session), rows)


async def add_viewers(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(_viewers_upsert(session), rows)


async def minutes(
    session: AsyncSession, tenant_id: uuid.UUID, event_id: uuid.UUID
) -> Sequence[AnalyticsMinute]:
    stmt = scoped(select(AnalyticsMinute), AnalyticsMinute, tenant_id)
    stmt = stmt.where(AnalyticsMinute.event_id == event_id).order_by(AnalyticsMinute.minute)
    return (await session.execute(stmt)).scalars().all()


async def health_minute_for_update(
    session: AsyncSession, tenant_id: uuid.UUID, event_id: uuid.UUID, minute: dt.datetime
) -> AnalyticsHealthMinute:
    """The (event, minute) health row, created empty if need be and locked until the
    transaction ends (two producers folding into one minute do not lose a sample)."""
    table = AnalyticsHealthMinute.__table__
    await session.execute(
        _insert(session)(table)
        .values(event_id=event_id, minute=minute, tenant_id=tenant_id, status="ok")
        .on_conflict_do_nothing(index_elements=["event_id", "minute"])
    )
    stmt = scoped(select(AnalyticsHealthMinute), AnalyticsHealthMinute, tenant_id).where(
        AnalyticsHealthMinute.event_id == event_id, AnalyticsHealthMinute.minute == minute
    )
    stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one()


async def health_minutes(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    event_id: uuid.UUID,
    *,
    before: dt.datetime | None,
    limit: int,
) -> Sequence[AnalyticsHealthMinute]:
    """Up to `limit` minutes before `before` (or the latest), newest first."""
    stmt = scoped(select(AnalyticsHealthMinute), AnalyticsHealthMinute, tenant_id).where(
        AnalyticsHealthMinute.event_id == event_id
    )
    if before is not None:
        stmt = stmt.where(AnalyticsHealthMinute.minute < before)
    stmt = stmt.order_by(AnalyticsHealthMinute.minute.desc()).limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def viewer_totals(
    session: AsyncSession, tenant_id: uuid.UUID, event_id: uuid.UUID
) -> tuple[int, int]:
    stmt = scoped(
        select(func.count(), func.coalesce(func.sum(AnalyticsViewer.watch_ms), 0)),
        AnalyticsViewer,
        tenant_id,
    ).where(AnalyticsViewer.event_id == event_id)
    count, watched = (await session.execute(stmt)).one()
    return int(count), int(watched)


async def new_followers(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    owner_id: uuid.UUID,
    since: dt.datetime,
    until: dt.datetime,
) -> int:
    stmt = scoped(select(func.count()).select_from(Follow), Follow, tenant_id).where(
        Follow.followee_id == owner_id, Follow.created_at >= since, Follow.created_at <= until
    )
    return int((await session.execute(stmt)).scalar_one())


async def event_totals(
    session: AsyncSession,
    tenant_id: uuid.UUID | None,
    *,
    owner_id: uuid.UUID | None = None,
    limit: int = 20,
    order_by_peak: bool = False,
) -> Sequence[Any]:
    """Per event: peak viewers, watch time and chat, newest events first (or by peak)."""
    per_event = (
        select(
            AnalyticsMinute.event_id.label("event_id"),
            func.max(AnalyticsMinute.viewers).label("peak"),
            func.sum(AnalyticsMinute.watch_ms).label("watch_ms"),
            func.sum(AnalyticsMinute.chat_messages).label("chat"),
        )
        .group_by(AnalyticsMinute.event_id)
        .subquery()
    )
    uniques = (
        select(AnalyticsViewer.event_id.label("event_id"), func.count().label("uniques"))
        .group_by(AnalyticsViewer.event_id)
        .subquery()
    )
    stmt = (
        select(
            Event.id,
            Event.title,
            Event.status,
            Event.created_at,
            func.coalesce(per_event.c.peak, 0),
            func.coalesce(uniques.c.uniques, 0),
            func.coalesce(per_event.c.watch_ms, 0),
            func.coalesce(per_event.c.chat, 0),
        )
        .outerjoin(per_event, per_event.c.event_id == Event.id)
        .outerjoin(uniques, uniques.c.event_id == Event.id)
    )
    if tenant_id is not None:
        stmt = scoped(stmt, Event, tenant_id)
    if owner_id is not None:
        stmt = stmt.where(Event.owner_id == owner_id)
    order = (
        (func.coalesce(per_event.c.peak, 0).desc(), Event.created_at.desc())
        if order_by_peak
        else (Event.created_at.desc(),)
    )
    rows: Sequence[Any] = (await session.execute(stmt.order_by(*order).limit(limit))).all()
    return rows


async def period(
    session: AsyncSession,
    tenant_id: uuid.UUID | None,
    since: dt.datetime,
    until: dt.datetime,
    *,
    owner_id: uuid.UUID | None = None,
) -> tuple[int, int, int, int]:
    """(watch ms, chat messages, distinct events, distinct viewers) between two instants."""
    minutes_stmt = (
        select(
            func.coalesce(func.sum(AnalyticsMinute.watch_ms), 0),
            func.coalesce(func.sum(AnalyticsMinute.chat_messages), 0),
            func.count(func.distinct(AnalyticsMinute.event_id)),
        )
        .join(Event, Event.id == AnalyticsMinute.event_id)
        .where(AnalyticsMinute.minute >= since, AnalyticsMinute.minute < until)
    )
    viewers_stmt = (
        select(func.count())
        .select_from(AnalyticsViewer)
        .join(Event, Event.id == AnalyticsViewer.event_id)
        .where(AnalyticsViewer.first_seen_at >= since, AnalyticsViewer.first_seen_at < until)
    )
    if tenant_id is not None:
        minutes_stmt = scoped(minutes_stmt, Event, tenant_id)
        viewers_stmt = scoped(viewers_stmt, Event, tenant_id)
    if owner_id is not None:
        minutes_stmt = minutes_stmt.where(Event.owner_id == owner_id)
        viewers_stmt = viewers_stmt.where(Event.owner_id == owner_id)
    watch, chat, events = (await session.execute(minutes_stmt)).one()
    viewers = (await session.execute(viewers_stmt)).scalar_one()
    return int(watch), int(chat), int(events), int(viewers)


async def live_event_ids(session: AsyncSession) -> Sequence[uuid.UUID]:
    # unscoped: platform-wide figures, served to platform admins only
    stmt = select(Event.id).where(Event.status.in_(("live", "reconnecting")))
    return (await session.execute(stmt)).scalars().all()


async def save_summary(session: AsyncSession, summary: EventSummary) -> None:
    await session.merge(summary)


async def platform_counts(session: AsyncSession) -> tuple[int, int, int]:
    """(tenants, users, events) across the platform."""
    # unscoped: platform-wide figures, served to platform admins only
    tenants = (await session.execute(select(func.count()).select_from(Tenant))).scalar_one()
    users = (await session.execute(select(func.count()).select_from(User))).scalar_one()
    events = (await session.execute(select(func.count()).select_from(Event))).scalar_one()
    return int(tenants), int(users), int(events)


async def count_running_containers(session: AsyncSession) -> int:
    """Containers the manager has running now, on every node and for every tenant."""
    # unscoped: a platform-wide figure, for platform admins only.
    stmt = select(func.count()).select_from(EventContainer)
    return int((await session.execute(stmt.where(EventContainer.state == "running"))).scalar_one())
