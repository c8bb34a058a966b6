"""Row-level security on PostgreSQL: the second wall behind `scoped()`.

The app under test connects as a role that owns nothing and has neither SUPERUSER nor
BYPASSRLS (tests/fixtures/services.APP_ROLE), as a production deployment should (README,
"Row-level security"). These tests use the app's own engine, so they run as that role.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from bigfootlive.authz.roles import Role
from bigfootlive.authz.scoping import platform_scope, tenant_scope
from bigfootlive.config import ConfigurationError
from bigfootlive.db import Base, Database
from bigfootlive.models import Event
from bigfootlive.row_security import NO_ROWS, row_scope

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)

TENANT_TABLES = sorted(t.name for t in Base.metadata.tables.values() if "tenant_id" in t.c)


async def _tenant_with_rows(factory, client):
    """A tenant with rows in as many tenant-owned tables as its ordinary use fills."""
    acme = await factory.tenant()
    admin = await factory.user(acme, role=Role.ADMIN)  # users, auth_sessions, audit_records
    await factory.user(acme, role=Role.STREAMER)
    created = await client.post("/api/events", json={"title": "Show"}, headers=admin.headers)
    assert created.status_code == 201, created.text
    key = await client.post("/api/api-keys", json={"name": "media"}, headers=admin.headers)
    assert key.status_code == 201, key.text
    prefs = await client.put(
        "/api/notifications/preferences", json={"email_event_live": False}, headers=admin.headers
    )
    assert prefs.status_code == 200, prefs.text
    wrong = await client.post(
        "/api/auth/login",
        json={"tenant": acme.slug, "email": admin.user.email, "password": "not-the-password"},
    )
    assert wrong.status_code == 401  # login_lockouts
    return acme


async def _count(session, table: str, tenant_id: uuid.UUID) -> int:
    # An unscoped query that asks for the other tenant's rows by name.
    stmt = text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t")  # noqa: S608 - our names
    return int((await session.execute(stmt, {"t": tenant_id})).scalar_one())


async def _insert(state, row) -> None:
    async with state.db.transaction() as session:
        session.add(row)
        await session.flush()


async def _run(state, statement: str) -> None:
    async with state.db.transaction() as session:
        await session.execute(text(statement))


async def _count_without_row_security(state, tenant_id: uuid.UUID) -> int:
    async with state.db.transaction() as session:
        await session.execute(text("SET LOCAL row_security = off"))
        return await _count(session, "events", tenant_id)


async def test_every_tenant_owned_table_is_walled_for_the_app_role(state) -> None:
    async with state.db.transaction() as session:
        role = (
            await session.execute(
                text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            )
        ).one()
        assert tuple(role) == (False, False)
        rows = await session.execute(
            text(
                "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
                "pg_get_userbyid(c.relowner) = current_user AS owned, "
                "EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid "
                "        AND p.polname = 'tenant_isolation') AS policy "
                "FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
                "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' "
                "AND a.attname = 'tenant_id' AND NOT a.attisdropped ORDER BY c.relname"
            )
        )
        found = {
            r.relname: (r.relrowsecurity, r.relforcerowsecurity, r.owned, r.policy) for r in rows
        }
    assert sorted(found) == TENANT_TABLES
    assert {t: v for t, v in found.items() if v != (True, True, False, True)} == {}


async def test_an_unscoped_query_as_tenant_b_returns_none_of_tenant_a_rows(
    state, factory, client
) -> None:
    acme = await _tenant_with_rows(factory, client)
    other = await factory.tenant()
    async with state.db.transaction() as session:
        with platform_scope("test: what tenant A has"):
            present = {t: await _count(session, t, acme.id) for t in TENANT_TABLES}
        with tenant_scope(other.id):
            seen_by_b = {t: await _count(session, t, acme.id) for t in TENANT_TABLES}
            everything_b_sees = {
                t: int((await session.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one())  # noqa: S608
                for t in TENANT_TABLES
            }
        with row_scope(NO_ROWS):
            seen_by_nobody = {t: await _count(session, t, acme.id) for t in TENANT_TABLES}
        with tenant_scope(acme.id):
            seen_by_a = {t: await _count(session, t, acme.id) for t in TENANT_TABLES}
    filled = sorted(t for t, n in present.items() if n)
    # The data exists, and tenant A itself sees it: the zeros below are the wall, not emptiness.
    assert {"api_keys", "audit_records", "auth_sessions", "events", "users"} <= set(filled)
    assert len(filled) >= 7, filled
    assert seen_by_a == present
    assert seen_by_b == dict.fromkeys(TENANT_TABLES, 0)
    assert everything_b_sees == dict.fromkeys(TENANT_TABLES, 0)
    assert seen_by_nobody == dict.fromkeys(TENANT_TABLES, 0)


async def test_writing_another_tenants_rows_is_refused(state, factory, client) -> None:
    acme = await _tenant_with_rows(factory, client)
    other = await factory.tenant()
    async with state.db.transaction() as session:
        with platform_scope("test: copy tenant A's event"):
            event = (
                await session.execute(select(Event).where(Event.tenant_id == acme.id))
            ).scalar_one()
            values = {c.key: getattr(event, c.key) for c in Event.__table__.columns}
    suffix = uuid.uuid4().hex
    values |= {"id": uuid.uuid4(), "stream_key_hash": suffix, "playback_id": suffix[:32]}
    with tenant_scope(other.id):
        # An insert that names tenant A is refused by the policy's WITH CHECK.
        with pytest.raises(DBAPIError, match="row-level security"):
            await _insert(state, Event(**values))
    with tenant_scope(other.id):
        # Updates and deletes of A's rows touch nothing.
        async with state.db.transaction() as session:
            updated = await session.execute(
                text("UPDATE users SET display_name = 'pwned' WHERE tenant_id = :t"),
                {"t": acme.id},
            )
            deleted = await session.execute(
                text("DELETE FROM events WHERE tenant_id = :t"), {"t": acme.id}
            )
            assert (updated.rowcount, deleted.rowcount) == (0, 0)
    async with state.db.transaction() as session:
        with platform_scope("test: A's rows are intact"):
            assert await _count(session, "events", acme.id) == 1
            names = await session.execute(
                text("SELECT display_name FROM users WHERE tenant_id = :t"), {"t": acme.id}
            )
            assert "pwned" not in set(names.scalars())


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE events DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE events NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON events",
        "ALTER POLICY tenant_isolation ON events USING (true)",
        "CREATE POLICY open_door ON events USING (true)",
        "ALTER ROLE CURRENT_USER BYPASSRLS",
    ],
)
async def test_the_app_role_cannot_switch_the_wall_off(state, statement) -> None:
    with pytest.raises(DBAPIError, match=r"must be owner|must be superuser|permission denied"):
        await _run(state, statement)


async def test_row_security_off_does_not_expose_rows(state, factory, client) -> None:
    acme = await _tenant_with_rows(factory, client)
    other = await factory.tenant()
    with tenant_scope(other.id):
        # For a role the policies bind, row_security = off makes such a query fail instead of
        # silently skipping the policies.
        with pytest.raises(DBAPIError, match="row-level security"):
            await _count_without_row_security(state, acme.id)


async def test_the_scope_lasts_one_transaction(state, factory, client) -> None:
    acme = await _tenant_with_rows(factory, client)
    async with state.db.transaction() as session:
        with tenant_scope(acme.id):
            assert await _count(session, "events", acme.id) == 1
        # The block is over: the next statement (same transaction) is sent the new scope.
        with row_scope(NO_ROWS):
            assert await _count(session, "events", acme.id) == 0
    async with state.db.transaction() as session:
        with row_scope(NO_ROWS):
            setting = await session.execute(text("SELECT current_setting('app.tenant_id', true)"))
            assert setting.scalar_one() in ("", None)


async def test_a_role_that_bypasses_row_security_is_refused_in_production(
    settings, postgres_url
) -> None:
    production = settings.model_copy(update={"node_env": "production"})
    superuser = production.model_copy(update={"database_url": postgres_url})  # postgres
    db = Database.from_settings(superuser)
    try:
        with pytest.raises(ConfigurationError, match="superuser"):
            await db.check_row_security(superuser)
        on_purpose = superuser.model_copy(update={"database_allow_rls_bypass": True})
        assert await db.check_row_security(on_purpose) is False
    finally:
        await db.dispose()
    app_role = Database.from_settings(production)  # the tests' application role
    try:
        assert await app_role.check_row_security(production) is True
    finally:
        await app_role.dispose()
