"""Concurrent first publishes of one tenant's events go live in one call of `bfl_go_live_many`
(migration 0026), each caller with its own answer; two tenants never share a call."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from bigfootlive.authz.roles import Role
from bigfootlive.events import repository as repo
from bigfootlive.events.schemas import EventStatus
from bigfootlive.row_security import RowScope, row_scope


@pytest.fixture(autouse=True)
def _postgresql_only(state) -> None:
    if state.db.engine.dialect.name != "postgresql":
        pytest.skip("the PostgreSQL function; SQLite runs one statement per go-live")


@pytest.fixture
def calls(state, monkeypatch) -> list[tuple[Any, ...]]:
    """The database functions called: (function, tenant, event ids)."""
    seen: list[tuple[Any, ...]] = []
    original = state.db.call_scoped

    async def counting(function: str, *args: Any, **kwargs: Any) -> Any:
        ids = args[1] if isinstance(args[1], list) else [args[1]]
        seen.append((function, args[0], ids))
        return await original(function, *args, **kwargs)

    monkeypatch.setattr(state.db, "call_scoped", counting)
    return seen


def _go(db: Any, event: dict[str, Any], publisher: str) -> Any:
    go = {
        "tenant_id": uuid.UUID(event["tenant_id"]),
        "event_id": uuid.UUID(event["id"]),
        "expected": EventStatus.READY,
        "publisher_id": publisher,
    }

    async def run() -> Any:
        with row_scope(RowScope(tenant_id=go["tenant_id"])):
            return await repo.go_live(db, **go)

    return run()


async def test_one_tenants_concurrent_go_lives_share_a_call(studio, state, calls):
    events = [await studio.event() for _ in range(6)]
    moved = await asyncio.gather(*(_go(state.db, e, f"p{n}") for n, e in enumerate(events)))
    # asked in one turn of the event loop: one call for the six
    assert [len(ids) for _, _, ids in calls] == [6]
    assert [function for function, _, _ in calls] == ["bfl_go_live_many"]
    for n, (event, row) in enumerate(zip(events, moved, strict=True)):
        assert row is not None
        assert (str(row.id), row.status, row.publisher_id) == (event["id"], "live", f"p{n}")
        assert await studio.status(event) == "live"
    assert state.db.batches == {}  # nothing kept per tenant once idle


async def test_go_lives_asked_while_a_call_is_under_way_share_the_next(studio, state, monkeypatch):
    """One call at a time: those asked while one is on its way go together in the next."""
    events = [await studio.event() for _ in range(5)]
    original = state.db.call_scoped
    sent: list[list[uuid.UUID]] = []
    first_sent, release = asyncio.Event(), asyncio.Event()

    async def held(function: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(args[1] if isinstance(args[1], list) else [args[1]])
        if len(sent) == 1:
            first_sent.set()
            await release.wait()
        return await original(function, *args, **kwargs)

    monkeypatch.setattr(state.db, "call_scoped", held)
    first = asyncio.ensure_future(_go(state.db, events[0], "p0"))
    await first_sent.wait()
    rest = [asyncio.ensure_future(_go(state.db, e, f"p{n}")) for n, e in enumerate(events) if n]
    await asyncio.sleep(0)  # each of them asked (and waits)
    assert len(sent) == 1
    release.set()
    moved = await asyncio.gather(first, *rest)
    assert [row.publisher_id for row in moved] == [f"p{n}" for n in range(5)]
    assert sent == [[uuid.UUID(events[0]["id"])], sorted(uuid.UUID(e["id"]) for e in events[1:])]


async def test_a_shared_call_reads_only_its_events_rows(studio, state, calls):
    """Each event by its primary key (as `bfl_go_live`, migration 0023), not the tenant's
    armed events, even on a table never analyzed."""
    events = [await studio.event() for _ in range(10)]

    async def rows_read() -> int:
        async with state.db.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT pg_stat_force_next_flush()")
        for idle, _ in state.db.calls._idle:  # the go-lives' backends (`pgcalls.CallPool`)
            await idle.execute("SELECT pg_stat_force_next_flush()")
        async with state.db.engine.connect() as conn:
            found = await conn.exec_driver_sql(
                "SELECT coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0) "
                "FROM pg_stat_user_tables WHERE relname = 'events'"
            )
            return int(found.scalar_one())

    before = await rows_read()
    moved = await asyncio.gather(*(_go(state.db, e, "p") for e in events[2:6]))
    after = await rows_read()
    assert all(row is not None for row in moved)
    assert [len(ids) for _, _, ids in calls] == [4]
    assert after - before == 4


async def test_two_tenants_never_share_a_call(studio, state, factory, client, calls):
    other = await factory.tenant()
    streamer = await factory.user(other, role=Role.STREAMER)

    async def theirs() -> dict[str, Any]:
        created = await client.post("/api/events", json={"title": "B"}, headers=streamer.headers)
        event = created.json()
        started = await client.post(f"/api/events/{event['id']}/start", headers=streamer.headers)
        assert started.status_code == 200, started.text
        return dict(event)

    mine = [await studio.event() for _ in range(3)]
    their = [await theirs() for _ in range(3)]
    mixed = [e for pair in zip(mine, their, strict=True) for e in pair]
    moved = await asyncio.gather(*(_go(state.db, e, "p") for e in mixed))
    assert all(row is not None for row in moved)
    by_tenant = {e["id"]: uuid.UUID(e["tenant_id"]) for e in mixed}
    for _, tenant, ids in calls:
        assert {by_tenant[str(i)] for i in ids} == {tenant}
    assert sorted(len(ids) for _, _, ids in calls) == [3, 3]


async def test_one_event_asked_for_twice_goes_live_once(studio, state, calls):
    warm, event = await studio.event(), await studio.event()
    first, second, third = await asyncio.gather(
        _go(state.db, warm, "w"), _go(state.db, event, "a"), _go(state.db, event, "b")
    )
    assert first is not None
    assert second is not None
    assert second.publisher_id == "a"
    assert third is None  # sent once: the later caller changed nothing
    assert [ids for _, _, ids in calls] == [sorted(uuid.UUID(e["id"]) for e in (warm, event))]


async def test_a_failed_call_fails_each_of_its_callers(studio, state, monkeypatch):
    events = [await studio.event() for _ in range(3)]

    async def down(*_: Any, **__: Any) -> Any:
        raise ConnectionRefusedError("database down")

    monkeypatch.setattr(state.db, "call_scoped", down)
    results = await asyncio.gather(*(_go(state.db, e, "p") for e in events), return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionRefusedError] * 3
    monkeypatch.undo()
    assert state.db.batches == {}
    assert [await studio.status(e) for e in events] == ["ready"] * 3


async def test_first_publishes_through_the_hook_share_calls(studio, state, calls):
    """The media server's publishes, concurrent, through the hook: every event live, fewer
    calls than publishes, each call one tenant's."""
    warm = await studio.event()
    headers = {**studio.hook_headers, "content-type": "application/x-www-form-urlencoded"}

    async def publish(event: dict[str, Any], client_id: str) -> int:
        body = f"call=publish&app=ingest&clientid={client_id}&name={event['ingest']['stream_key']}"
        response = await studio.client.post(
            "/api/streaming/hooks/nginx-rtmp", content=body, headers=headers
        )
        return response.status_code

    assert await publish(warm, "w") == 302  # the API key's cache entry, read once
    events = [await studio.event() for _ in range(8)]
    calls.clear()
    statuses = await asyncio.gather(*(publish(e, f"c{n}") for n, e in enumerate(events)))
    assert statuses == [302] * 8
    assert [await studio.status(e) for e in events] == ["live"] * 8
    assert sum(len(ids) for _, _, ids in calls) == 8
    assert len(calls) < 8


async def _waiting_on_locks(state: Any, count: int) -> None:
    """Until `count` backends of this database wait for a row lock."""
    deadline = asyncio.get_running_loop().time() + 10
    while asyncio.get_running_loop().time() < deadline:
        async with state.db.engine.connect() as conn:
            found = await conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if found.scalar_one() >= count:
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never {count} backends waiting for a lock")


async def test_two_processes_calls_sharing_events_never_deadlock(studio, state):
    """Two processes' calls lock the rows they share in one order. Here one call holds `a`
    and waits for `b` (held by another transaction) while the other, asked for `c` then `a`,
    would hold `c` and wait for `a`: when `b` is freed the first would wait for `c`, a
    deadlock PostgreSQL breaks by failing one call. In id order the second waits for `a`
    holding nothing, and both calls end."""
    events = [await studio.event() for _ in range(3)]
    tenant = uuid.UUID(events[0]["tenant_id"])
    a, b, c = sorted(uuid.UUID(e["id"]) for e in events)
    scope = RowScope(tenant_id=tenant)
    ready = EventStatus.READY.value
    async with state.db.engine.connect() as blocker:
        await blocker.execute(
            text("SELECT set_config('app.tenant_id', :tenant, true)"), {"tenant": str(tenant)}
        )
        await blocker.execute(text("SELECT 1 FROM events WHERE id = :b FOR UPDATE"), {"b": b})
        first = asyncio.create_task(
            repo._go_live_many(
                state.db, scope, tenant, [(a, ready, "p1"), (b, ready, "p1"), (c, ready, "p1")]
            )
        )
        await _waiting_on_locks(state, 1)
        second = asyncio.create_task(
            repo._go_live_many(state.db, scope, tenant, [(c, ready, "p2"), (a, ready, "p2")])
        )
        await _waiting_on_locks(state, 2)
        await blocker.rollback()
    took, lost = await asyncio.gather(first, second)
    assert [row is not None and row["publisher_id"] for row in took] == ["p1"] * 3
    assert lost == [None, None]  # already live: the second call changed nothing
