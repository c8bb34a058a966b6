"""`Database.read_rows`: a hot read straight on the pooled asyncpg connection (PostgreSQL) must
keep every property of `Database.reads`: the row scope applies (row-level security), it lasts
that read only, a failed read leaves no transaction behind on the pooled connection, and it
cannot write. On SQLite it is `reads()`."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event, literal_column, select, text, update
from sqlalchemy.exc import DBAPIError

from bigfootlive.authz.roles import Role
from bigfootlive.authz.scoping import platform_scope, tenant_scope
from bigfootlive.models import User
from bigfootlive.row_security import NO_ROWS, row_scope
from bigfootlive.tenants.repository import USER_PAGE_COLUMNS, USER_PAGE_FIELDS, list_users
from bigfootlive.tenants.service import users_page
from tests.fixtures import services

# Deliberately not tenant-scoped in SQL: on PostgreSQL only the row scope stands between a
# tenant and another's rows here, which is what these tests look at.
_EMAILS = select(User.email).order_by(User.email)
_SCOPE = select(literal_column("current_setting('app.tenant_id', true)"))
_FAILS = select(literal_column("1 / 0"))
_WRITES = update(User).values(display_name="changed")


async def _two_tenants(factory):
    acme, other = await factory.tenant(), await factory.tenant()
    a = await factory.user(acme, role=Role.ADMIN)
    b = await factory.user(other, role=Role.ADMIN)
    return acme, other, a.user.email, b.user.email


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_read_rows_sees_only_the_scoped_tenants_rows(state, factory) -> None:
    acme, other, a_email, b_email = await _two_tenants(factory)
    with tenant_scope(acme.id):
        seen_by_a = [row[0] for row in await state.db.read_rows(_EMAILS)]
    with tenant_scope(other.id):
        seen_by_b = [row[0] for row in await state.db.read_rows(_EMAILS)]
    with row_scope(NO_ROWS):
        seen_by_nobody = list(await state.db.read_rows(_EMAILS))
    with platform_scope("test: every tenant's users"):
        seen_by_platform = {row[0] for row in await state.db.read_rows(_EMAILS)}
    assert seen_by_a == [a_email]
    assert seen_by_b == [b_email]
    assert seen_by_nobody == []
    assert {a_email, b_email} <= seen_by_platform


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_the_scope_lasts_one_read(state, factory) -> None:
    acme, _, _, _ = await _two_tenants(factory)
    with tenant_scope(acme.id):
        assert [tuple(r) for r in await state.db.read_rows(_SCOPE)] == [(str(acme.id),)]
    # The next user of the pooled connection (the pool hands the same one back) starts clean.
    with row_scope(NO_ROWS):
        assert [tuple(r) for r in await state.db.read_rows(_SCOPE)] in ([("",)], [(None,)])
    async with state.db.engine.connect() as conn:
        setting = await conn.execute(text("SELECT current_setting('app.tenant_id', true)"))
        assert setting.scalar_one() in ("", None)
        await conn.rollback()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_failed_read_leaves_the_pooled_connection_clean(state, factory) -> None:
    acme, _, a_email, _ = await _two_tenants(factory)
    with tenant_scope(acme.id):
        for _ in range(3):  # more failures than the pool has idle connections to spoil
            with pytest.raises(DBAPIError, match="division by zero"):
                await state.db.read_rows(_FAILS)
        # Not stuck in an aborted transaction, and the scope of the failed read is gone.
        assert [row[0] for row in await state.db.read_rows(_EMAILS)] == [a_email]
    async with state.db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert not raw.driver_connection.is_in_transaction()
        await conn.rollback()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_read_rows_cannot_write(state, factory) -> None:
    acme, _, _, _ = await _two_tenants(factory)
    with tenant_scope(acme.id), pytest.raises(DBAPIError, match="read-only transaction"):
        await state.db.read_rows(_WRITES.returning(User.id))


async def test_read_rows_answers_like_reads_on_both_backends(state, factory) -> None:
    acme, _, a_email, _ = await _two_tenants(factory)
    scoped_emails = _EMAILS.where(User.tenant_id == acme.id)
    with tenant_scope(acme.id):
        fast = [tuple(row) for row in await state.db.read_rows(scoped_emails)]
        async with state.db.reads() as conn:
            plain = [tuple(row) for row in (await conn.execute(scoped_emails)).all()]
    assert fast == plain == [(a_email,)]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_the_scope_rides_on_the_begin_of_its_own_transaction_only(state, factory) -> None:
    # The settings go with the BEGIN of the transaction the statement starts
    # (`db.ScopedConnection`): the first statement already sees them, and nothing is left
    # pending on the connection for a later transaction to pick up.
    acme, other, a_email, _ = await _two_tenants(factory)
    for tenant, expected in ((acme.id, [a_email]), (other.id, [])):
        with tenant_scope(tenant):
            async with state.db.transaction() as session:
                emails = (await session.execute(_EMAILS.where(User.email == a_email))).scalars()
                assert list(emails) == expected
                raw = await (await session.connection()).get_raw_connection()
                assert raw.driver_connection.pending_scope is None
    with row_scope(NO_ROWS):
        async with state.db.transaction() as session:
            setting = await session.execute(text("SELECT current_setting('app.tenant_id', true)"))
            assert setting.scalar_one() in ("", None)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_the_members_first_page_is_one_call_in_the_row_scope(state, factory) -> None:
    # `bfl_users_first_page` (migration 0022) sets the row scope and reads in one round trip:
    # row-level security still applies to what it reads, and its settings end with the call.
    acme, other, a_email, b_email = await _two_tenants(factory)

    async def page(tenant_id):
        rows = await users_page(state.db, tenant_id, query=None, cursor=None, limit=50)
        return [dict(zip(USER_PAGE_FIELDS, row, strict=True)) for row in rows]

    with tenant_scope(acme.id):
        mine = await page(acme.id)
        theirs = await page(other.id)  # another tenant's id under our scope: no row
    with row_scope(NO_ROWS):
        nobody = await page(acme.id)
    with platform_scope("test: every tenant's members"):
        platform = await page(other.id)
    assert [u["email"] for u in mine] == [a_email]
    assert mine[0]["role"] == "admin"
    assert mine[0]["is_active"] is True
    assert theirs == []
    assert nobody == []
    assert [u["email"] for u in platform] == [b_email]
    async with state.db.engine.connect() as conn:  # nothing left on the pooled connection
        raw = await conn.get_raw_connection()
        assert not raw.driver_connection.is_in_transaction()
        setting = await conn.execute(text("SELECT current_setting('app.tenant_id', true)"))
        assert setting.scalar_one() in ("", None)
        await conn.rollback()


async def test_the_members_first_page_is_the_same_on_both_backends(state, factory) -> None:
    acme, _, _, _ = await _two_tenants(factory)
    for _ in range(3):
        await factory.user(acme, role=Role.VIEWER)
    with tenant_scope(acme.id):
        first = await users_page(state.db, acme.id, query=None, cursor=None, limit=2)
        async with state.db.reads() as conn:
            plain = await list_users(
                conn, acme.id, query=None, cursor=None, limit=2, columns=USER_PAGE_COLUMNS
            )
    assert [tuple(row) for row in first] == [tuple(row) for row in plain]
    assert len(first) == 3  # limit + 1: a next page exists


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_burst_of_hot_reads_waits_for_pooled_connections(state, factory) -> None:
    # More hot reads at once than the pool keeps: they take turns on its connections instead
    # of opening overflow ones that the pool would close on return (a connection and a
    # backend started again and again under sustained load).
    acme, _, a_email, _ = await _two_tenants(factory)
    size = state.db.engine.pool.size()
    opened: list[object] = []
    event.listen(state.db.engine.sync_engine, "connect", lambda *_: opened.append(1))
    slow = select(User.email, literal_column("pg_sleep(0.02)")).where(User.email == a_email)
    with tenant_scope(acme.id):
        pages = await asyncio.gather(
            *(state.db.read_rows(slow) for _ in range(2 * size)),
            *(users_page(state.db, acme.id, query=None, cursor=None, limit=5) for _ in range(size)),
        )
    assert all(len(rows) == 1 for rows in pages)
    assert len(opened) <= size
    assert state.db.engine.pool.overflow() <= 0


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_connection_the_server_dropped_fails_one_call_and_is_replaced(
    state, factory, postgres_url
) -> None:
    acme, _, a_email, _ = await _two_tenants(factory)
    with tenant_scope(acme.id):
        await state.db.read_rows(_EMAILS)  # a pooled connection, then the server drops it
        await services.drop_other_connections(postgres_url)
        with pytest.raises(DBAPIError) as failed:  # every pooled connection is gone
            await state.db.read_rows(_EMAILS)
        assert failed.value.connection_invalidated
        assert [row[0] for row in await state.db.read_rows(_EMAILS)] == [a_email]
