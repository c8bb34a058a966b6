from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, func, or_, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.authz.scoping import platform_scope, scoped
from bigfootlive.db import Database
from bigfootlive.events.schemas import EventStatus, Visibility
from bigfootlive.kit.coalesce import Coalesced
from bigfootlive.kit.pagination import paginate
from bigfootlive.models import Event
from bigfootlive.notifications.repository import has_followers
from bigfootlive.row_security import RowScope, current_row_scope
from bigfootlive.webhooks.repository import has_active_endpoint


async def get(session: AsyncSession, tenant_id: uuid.UUID, event_id: uuid.UUID) -> Event | None:
    stmt = scoped(select(Event), Event, tenant_id).where(Event.id == event_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_for_visibility_check(session: AsyncSession, event_id: uuid.UUID) -> Event | None:
    """Unscoped on purpose: public events are visible across tenants. Callers must apply
    `service.can_view` before returning anything."""
    # unscoped: see the docstring.
    stmt = select(Event).where(Event.id == event_id)
    with platform_scope("event visibility check", lookup=True):
        return (await session.execute(stmt)).scalar_one_or_none()


async def find_by_key_hashes(session: AsyncSession, hashes: Sequence[str]) -> Event | None:
    """Unscoped on purpose: a media server knows only the key; the caller checks the tenant of
    the callback's API key against the event's."""
    # unscoped: see the docstring.
    stmt = select(Event).where(Event.stream_key_hash.in_(list(hashes)))
    with platform_scope("event by stream key", lookup=True):
        return (await session.execute(stmt)).scalars().first()


async def find_by_rotated_key_hashes(session: AsyncSession, hashes: Sequence[str]) -> Event | None:
    """Unscoped on purpose (as above): the live event a rotated-away key still publishes to."""
    # unscoped: see the docstring.
    stmt = select(Event).where(
        Event.rotated_key_hash.in_(list(hashes)), Event.status == EventStatus.LIVE.value
    )
    with platform_scope("event by rotated stream key", lookup=True):
        return (await session.execute(stmt)).scalars().first()


async def find_by_playback_id(session: AsyncSession, playback_id: str) -> Event | None:
    """Unscoped on purpose (as above): a playback id is public."""
    # unscoped: see the docstring.
    stmt = select(Event).where(Event.playback_id == playback_id)
    with platform_scope("event by playback id", lookup=True):
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


_TABLE = cast(Table, Event.__table__)
_WENT_LIVE = (
    "id", "tenant_id", "owner_id", "playback_id", "visibility", "status", "version",
    "publisher_id", "stream_key_hash", "title", "went_live_at", "updated_at",
)  # fmt: skip

# The media server's publish when nothing else needs writing in its transaction: the
# conditional UPDATE, only if the tenant has no active webhook endpoint and the owner no
# follower (those need delivery and outbox rows committed with the change). Built once:
# `Database.write_rows` keeps its compiled form (SQLite). Keep in step with `bfl_go_live_many`
# (migration 0026), the same statement for each event, as a PostgreSQL function.
GO_LIVE = (
    update(_TABLE)
    .where(
        _TABLE.c.tenant_id == bindparam("b_tenant"),
        _TABLE.c.id == bindparam("b_event"),
        _TABLE.c.status == bindparam("b_expected"),
        ~has_active_endpoint(_TABLE.c.tenant_id),
        ~has_followers(_TABLE.c.tenant_id, _TABLE.c.owner_id),
    )
    .values(
        status=EventStatus.LIVE.value,
        version=_TABLE.c.version + 1,
        updated_at=bindparam("b_now"),
        publisher_id=bindparam("b_publisher"),
        went_live_at=func.coalesce(_TABLE.c.went_live_at, bindparam("b_now")),
        disconnected_at=None,
    )
    .returning(*(_TABLE.c[name] for name in _WENT_LIVE))
)


async def go_live(
    db: Database,
    *,
    tenant_id: uuid.UUID,
    event_id: uuid.UUID,
    expected: EventStatus,
    publisher_id: str,
) -> Event | None:
    """`GO_LIVE` committed on its own, in the current row scope. On PostgreSQL the go-lives of
    concurrent callers for the same tenant (and row scope) go together, one call of
    `bfl_go_live_many` (migration 0026: the statement of `bfl_go_live` for each, in one
    transaction, one round trip) at a time, those of one turn of the event loop together
    (`kit.coalesce.Coalesced`); callers of two tenants never share a call. SQLite runs the Core
    statement. The event comes
    back as a transient `Event` (never added to a session) holding the columns the
    after-commit work and the hooks read; None when nothing changed (the status was no longer
    `expected`, there are webhooks or followers to serve, or another caller of the same call
    asked for the same event first)."""
    if db.engine.dialect.name == "postgresql":
        scope = current_row_scope()
        key = ("go_live", scope, tenant_id)
        batch: Coalesced[_GoLive, dict[str, Any] | None] | None = db.batches.get(key)
        if batch is None:
            send = functools.partial(_go_live_many, db, scope, tenant_id)
            batch = db.batches[key] = Coalesced(send, "go-live", _GO_LIVES_PER_CALL)
        try:
            row = await batch((event_id, expected.value, publisher_id))
        finally:
            if batch.idle and db.batches.get(key) is batch:  # no entry per tenant kept idle
                del db.batches[key]
        return None if row is None else _went_live(row)
    params = {
        "b_tenant": tenant_id,
        "b_event": event_id,
        "b_expected": expected.value,
        "b_publisher": publisher_id,
        "b_now": _now(),
    }
    written = await db.write_rows(GO_LIVE, params)
    rows = [dict(zip(_WENT_LIVE, row, strict=True)) for row in written]
    return _went_live(rows[0]) if rows else None


def _went_live(row: dict[str, Any]) -> Event:
    """A transient `Event` holding the columns of `_WENT_LIVE` (the others read None), made
    as the ORM makes a loaded row's object (values straight into its dict) rather than through
    `Event(**row)`, whose attribute events cost ~20 us a go-live. Never added to a session."""
    event: Event = _EVENT_CLASS.new_instance()
    event.__dict__.update(row)
    return event


_EVENT_CLASS = sa_inspect(Event).class_manager


_GoLive = tuple[uuid.UUID, str, str]  # event id, expected status, publisher id
_GO_LIVES_PER_CALL = 64


async def _go_live_many(
    db: Database, scope: RowScope, tenant_id: uuid.UUID, calls: list[_GoLive]
) -> list[dict[str, Any] | None]:
    """One call of `bfl_go_live_many` (`bfl_go_live` for one event) for `calls` (one
    tenant's), each caller's changed row or None. An event asked for twice is sent once: the
    later caller changes nothing, as its own statement after the first one's would have (its
    caller re-reads the row and decides). Sent in event-id order: two processes' calls that
    share events lock their rows in the same order, so neither waits for the other's lock
    while holding one the other wants (a deadlock PostgreSQL would break by failing one)."""
    first: dict[uuid.UUID, int] = {}
    for n, (event_id, _, _) in enumerate(calls):
        first.setdefault(event_id, n)
    sent = sorted((calls[n] for n in first.values()), key=lambda call: call[0])
    if len(sent) == 1:  # alone (an idle process): the one-event function, a little cheaper
        found = await db.call_scoped(
            "bfl_go_live", tenant_id, *sent[0], _now(), scope=scope, columns=_WENT_LIVE
        )
    else:
        found = await db.call_scoped(
            "bfl_go_live_many",
            tenant_id,
            [event_id for event_id, _, _ in sent],
            [expected for _, expected, _ in sent],
            [publisher for _, _, publisher in sent],
            _now(),
            scope=scope,
            columns=_WENT_LIVE,
        )
    changed = {row["id"]: {name: row[name] for name in _WENT_LIVE} for row in found}
    answers: list[dict[str, Any] | None] = [None] * len(calls)
    for event_id, n in first.items():
        answers[n] = changed.get(event_id)
    return answers


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
            rotated_key_hash=None,
        )
        .returning(Event)
        .execution_options(populate_existing=True, synchronize_session=False)
    )
    return (await session.execute(stmt)).scalars().all()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
