from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.authz.scoping import platform_scope, scoped
from bigfootlive.events.schemas import EventStatus, Visibility
from bigfootlive.kit.pagination import paginate
from bigfootlive.models import Event


async def get(session: AsyncSession, tenant_id: uuid.UUID, event_id: uuid.UUID) -> Event | None:
    stmt = scoped(select(Event), Event, tenant_id).where(Event.id == event_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_for_visibility_check(session: AsyncSession, event_id: uuid.UUID) -> Event | None:
    """Unscoped on purpose: public events are visible across tenants. Callers must apply
    `service.can_view` before returning anything."""
    # unscoped: see the docstring.
    stmt = select(Event).where(Event.id == event_id)
    with platform_scope("event visibility check"):
        return (await session.execute(stmt)).scalar_one_or_none()


async def find_by_key_hashes(session: AsyncSession, hashes: Sequence[str]) -> Event | None:
    """Unscoped on purpose: a media server knows only the key; the caller checks the tenant of
    the callback's API key against the event's."""
    # unscoped: see the docstring.
    stmt = select(Event).where(Event.stream_key_hash.in_(list(hashes)))
    with platform_scope("event by stream key"):
        return (await session.execute(stmt)).scalars().first()


async def find_by_playback_id(session: AsyncSession, playback_id: str) -> Event | None:
    """Unscoped on purpose (as above): a playback id is public."""
    # unscoped: see the docstring.
    stmt = select(Event).where(Event.playback_id == playback_id)
    with platform_scope("event by playback id"):
        return (await session.execute(stmt)).scalar_one_or_none()


def page_query(
    *,
    tenant_id: uuid.UUID | None,
    statuses: Sequence[EventStatus],
    owner_id: uuid.UUID | None,
    viewer_id: uuid.UUID | None,
    sees_all_in_tenant: bool,
) -> Select[Event]:
    if tenant_id is None:
        # Anonymous directory: public events of every tenant, nothing else.
        stmt = select(Event).where(Event.visibility == Visibility.PUBLIC.value)
    else:
        stmt = scoped(select(Event), Event, tenant_id)
        if not sees_all_in_tenant:
            stmt = stmt.where(
                or_(
                    Event.visibility.in_([Visibility.PUBLIC.value, Visibility.TENANT.value]),
                    Event.owner_id == viewer_id,
                )
            )
    if statuses:
        stmt = stmt.where(Event.status.in_([s.value for s in statuses]))
    if owner_id is not None:
        stmt = stmt.where(Event.owner_id == owner_id)
    return stmt


async def page(
    session: AsyncSession, stmt: Select[Event], *, cursor: str | None, limit: int
) -> Sequence[Event]:
    stmt = paginate(stmt, Event.created_at, Event.id, cursor=cursor, limit=limit)
    return (await session.execute(stmt)).scalars().all()


async def transition(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    event_id: uuid.UUID,
    expected: EventStatus,
    to: EventStatus,
    values: dict[str, Any],
    publisher_id: str | None = None,
) -> Event | None:
    """Move the event from `expected` to `to` in one conditional UPDATE; None when its status
    was no longer `expected` (another request got there first), so nothing was changed."""
    stmt = (
        update(Event)
        .where(Event.tenant_id == tenant_id, Event.id == event_id, Event.status == expected.value)
        .values(status=to.value, version=Event.version + 1, updated_at=_now(), **values)
        .returning(Event)
        .execution_options(populate_existing=True, synchronize_session=False)
    )
    if publisher_id is not None:
        stmt = stmt.where(Event.publisher_id == publisher_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def end_expired_reconnects(
    session: AsyncSession, cutoff: dt.datetime, now: dt.datetime
) -> Sequence[Event]:
    """End every event whose publisher has been gone since before `cutoff`. Safe to run in
    several processes at once: each row is ended (and returned) by exactly one of them."""
    stmt = (
        update(Event)
        .where(
            Event.status == EventStatus.RECONNECTING.value,
            Event.disconnected_at < cutoff,
        )
        .values(
            status=EventStatus.ENDED.value,
            version=Event.version + 1,
            updated_at=now,
            ended_at=now,
            ended_reason="publisher_gone",
            publisher_id=None,
        )
        .returning(Event)
        .execution_options(populate_existing=True, synchronize_session=False)
    )
    return (await session.execute(stmt)).scalars().all()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
