"""Queries on event containers, recordings and leases."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.authz.scoping import scoped
from bigfootlive.db import utcnow
from bigfootlive.events.schemas import EventStatus
from bigfootlive.models import Event, EventContainer, Recording

ARMED = [EventStatus.READY.value, EventStatus.LIVE.value, EventStatus.RECONNECTING.value]
FINISHED = [EventStatus.ENDED.value, EventStatus.CANCELLED.value]


async def desired_events(
    session: AsyncSession, prewarm_until: dt.datetime
) -> Sequence[tuple[uuid.UUID, uuid.UUID]]:
    """(event id, tenant id) of every event that should have a container now: armed or on
    air, or scheduled to start before `prewarm_until`."""
    # unscoped: the manager works for every tenant.
    stmt = select(Event.id, Event.tenant_id).where(
        or_(
            Event.status.in_(ARMED),
            and_(
                Event.status == EventStatus.SCHEDULED.value,
                Event.scheduled_start.is_not(None),
                Event.scheduled_start <= prewarm_until,
            ),
        )
    )
    return [(row[0], row[1]) for row in (await session.execute(stmt)).all()]


async def event_states(
    session: AsyncSession, event_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, dt.datetime | None]]:
    """status and ended_at of the given events (the manager's view; unscoped)."""
    if not event_ids:
        return {}
    # unscoped: the manager works for every tenant.
    stmt = select(Event.id, Event.status, Event.ended_at).where(Event.id.in_(list(event_ids)))
    return {row[0]: (row[1], row[2]) for row in (await session.execute(stmt)).all()}


async def get_event_unscoped(session: AsyncSession, event_id: uuid.UUID) -> Event | None:
    # unscoped: a worker is started for one event id, by the manager, which checked the tenant.
    return (await session.execute(select(Event).where(Event.id == event_id))).scalar_one_or_none()


async def containers_for(
    session: AsyncSession, event_ids: Sequence[uuid.UUID]
) -> list[EventContainer]:
    """Rows the manager looks after: every one not stopped, and those of `event_ids`."""
    # unscoped: the manager works for every tenant.
    stmt = select(EventContainer).where(EventContainer.state != "stopped")
    rows = {r.id: r for r in (await session.execute(stmt)).scalars().all()}
    for start in range(0, len(event_ids), 500):
        chunk = list(event_ids[start : start + 500])
        stmt = select(EventContainer).where(EventContainer.event_id.in_(chunk))
        rows.update({r.id: r for r in (await session.execute(stmt)).scalars().all()})
    return list(rows.values())


async def get_container(session: AsyncSession, event_id: uuid.UUID) -> EventContainer | None:
    # unscoped: keyed by event id, used by the manager and the event's own worker.
    stmt = select(EventContainer).where(EventContainer.event_id == event_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def update_container(
    session: AsyncSession,
    event_id: uuid.UUID,
    *,
    handle: str | None = None,
    handle_value: str | None = None,
    **values: Any,
) -> bool:
    """Update the row; with `handle`, only while that worker is still the current one (a
    replaced worker learns it has been fenced off). `handle_value` sets a new handle."""
    stmt = update(EventContainer).where(EventContainer.event_id == event_id)
    if handle is not None:
        stmt = stmt.where(EventContainer.handle == handle)
    if handle_value is not None:
        values["handle"] = handle_value
    result = await session.execute(
        stmt.values(updated_at=utcnow(), **values).execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def count_armed(
    session: AsyncSession, *, tenant_id: uuid.UUID | None, exclude: uuid.UUID
) -> int:
    """Events holding (or about to hold) a container, in one tenant or on the whole node."""
    stmt = select(func.count()).select_from(Event)
    if tenant_id is not None:
        stmt = scoped(stmt, Event, tenant_id)
    stmt = stmt.where(Event.status.in_(ARMED), Event.id != exclude)
    return int((await session.execute(stmt)).scalar_one())


async def list_containers(
    session: AsyncSession, tenant_id: uuid.UUID | None, *, include_stopped: bool
) -> Sequence[tuple[EventContainer, str, str]]:
    """Rows with their event's title and status; every tenant when `tenant_id` is None."""
    stmt = select(EventContainer, Event.title, Event.status).join(
        Event, Event.id == EventContainer.event_id
    )
    if tenant_id is not None:
        stmt = scoped(stmt, EventContainer, tenant_id)
    if not include_stopped:
        stmt = stmt.where(EventContainer.state != "stopped")
    stmt = stmt.order_by(EventContainer.created_at.desc()).limit(1000)
    return [(r[0], r[1], r[2]) for r in (await session.execute(stmt)).all()]


async def usage_by_tenant(
    session: AsyncSession, tenant_id: uuid.UUID | None
) -> Sequence[tuple[uuid.UUID, float, int]]:
    """(tenant, container-seconds, containers) totals."""
    stmt = select(
        EventContainer.tenant_id,
        func.coalesce(func.sum(EventContainer.container_seconds), 0.0),
        func.count(),
    ).group_by(EventContainer.tenant_id)
    if tenant_id is not None:
        stmt = scoped(stmt, EventContainer, tenant_id)
    return [(r[0], float(r[1]), int(r[2])) for r in (await session.execute(stmt)).all()]


async def recordings_of(
    session: AsyncSession, tenant_id: uuid.UUID, event_id: uuid.UUID
) -> Sequence[Recording]:
    stmt = scoped(select(Recording), Recording, tenant_id).where(Recording.event_id == event_id)
    return (await session.execute(stmt.order_by(Recording.created_at))).scalars().all()


async def ready_recordings(
    session: AsyncSession, tenant_id: uuid.UUID, event_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Recording]:
    """The first ready recording of each of `event_ids` that has one (a channel's past events)."""
    if not event_ids:
        return {}
    stmt = scoped(select(Recording), Recording, tenant_id).where(
        Recording.event_id.in_(list(event_ids)), Recording.status == "ready"
    )
    found: dict[uuid.UUID, Recording] = {}
    for row in (await session.execute(stmt.order_by(Recording.created_at))).scalars():
        found.setdefault(row.event_id, row)
    return found


async def events_ended_between(
    session: AsyncSession, start: dt.datetime, end: dt.datetime, *, limit: int = 500
) -> Sequence[Event]:
    # unscoped: the HLS retention sweep looks after every tenant's ended events.
    stmt = (
        select(Event)
        .where(Event.ended_at.is_not(None), Event.ended_at >= start, Event.ended_at < end)
        .order_by(Event.ended_at)
        .limit(limit)
    )
    return (await session.execute(stmt)).scalars().all()
