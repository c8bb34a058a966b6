"""`Database.call_scoped` on connections of its own (`pgcalls.CallPool`, PostgreSQL): a failed
call leaves its connection usable, a connection the server dropped fails the calls under way
and is replaced (503, not 500), a burst takes turns on at most the pool's size of
connections, a cancelled call never hands its connection to the next caller, and the row
scope of one call is not the next one's."""

from __future__ import annotations

import asyncio

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.exc import DBAPIError

from bigfootlive.authz.roles import Role
from bigfootlive.authz.scoping import tenant_scope
from bigfootlive.db import Database
from bigfootlive.http_errors import unavailable
from bigfootlive.row_security import NO_ROWS, row_scope
from bigfootlive.tenants.repository import USER_PAGE_FIELDS
from tests.fixtures import services

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)

_PID = "SELECT pg_backend_pid() AS pid"


async def _page(state, tenant_id):
    rows = await state.db.call_scoped("bfl_users_first_page", tenant_id, 51)
    return [dict(zip(USER_PAGE_FIELDS, row, strict=False))["email"] for row in rows]


async def test_a_call_sees_its_own_row_scope_only(state, factory) -> None:
    acme, other = await factory.tenant(), await factory.tenant()
    a = await factory.user(acme, role=Role.ADMIN)
    await factory.user(other, role=Role.ADMIN)
    with tenant_scope(acme.id):
        assert await _page(state, acme.id) == [a.user.email]
        assert await _page(state, other.id) == []
    with row_scope(NO_ROWS):  # the same connection next: nothing of the call before
        assert await _page(state, acme.id) == []
    setting = "SELECT current_setting('app.tenant_id', true) AS t"
    assert [r["t"] for r in await state.db.calls.fetch(setting, [])] in (
        [
            "",
        ],
        [None],
    )


async def test_a_failed_call_leaves_its_connection_usable(state) -> None:
    pid = (await state.db.calls.fetch(_PID, []))[0]["pid"]
    for _ in range(3):
        with pytest.raises(asyncpg.DivisionByZeroError):
            await state.db.calls.fetch("SELECT 1 / 0", [])
    assert (await state.db.calls.fetch(_PID, []))[0]["pid"] == pid  # kept, not replaced
    with pytest.raises(DBAPIError, match="does not exist"):
        await state.db.call_scoped("bfl_no_such_function")


async def test_a_connection_the_server_dropped_fails_once_and_is_replaced(
    state, postgres_url
) -> None:
    await asyncio.gather(*(state.db.calls.fetch(_PID, []) for _ in range(3)))
    assert state.db.calls.idle >= 1
    await services.drop_other_connections(postgres_url)
    failures: list[DBAPIError] = []
    with row_scope(NO_ROWS):
        try:  # the first call fails, unless the pool heard of the drop before it took one
            await state.db.call_scoped("bfl_users_first_page", None, 1)
        except DBAPIError as exc:
            failures.append(exc)
            assert state.db.calls.idle == 0  # the other idle ones went with it
        for _ in range(3):  # then every call is answered, on new connections
            assert list(await state.db.call_scoped("bfl_users_first_page", None, 1)) == []
    for failure in failures:
        assert failure.connection_invalidated
        assert unavailable(failure) is not None  # answered 503 database_unavailable


async def test_a_burst_takes_turns_on_the_pools_connections(state) -> None:
    size = state.settings.database_pool_size
    slow = "SELECT pg_backend_pid() AS pid, pg_sleep(0.02)"
    rows = await asyncio.gather(*(state.db.calls.fetch(slow, []) for _ in range(3 * size)))
    assert len({r[0]["pid"] for r in rows}) <= size


async def test_a_cancelled_call_takes_its_connection_with_it(state) -> None:
    pid = (await state.db.calls.fetch(_PID, []))[0]["pid"]
    call = asyncio.create_task(state.db.calls.fetch("SELECT pg_sleep(2)", []))
    await asyncio.sleep(0)  # its first step: it takes the idle connection and sends the query
    assert state.db.calls.idle == 0
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert (await state.db.calls.fetch(_PID, []))[0]["pid"] != pid


async def test_with_pre_ping_the_calls_take_the_engines_tested_connections(state) -> None:
    settings = state.settings.model_copy(update={"database_pool_pre_ping": True})
    db = Database.from_settings(settings)
    try:
        assert db.calls is None
        with row_scope(NO_ROWS):
            assert list(await db.call_scoped("bfl_users_first_page", None, 1)) == []
    finally:
        await db.dispose()
