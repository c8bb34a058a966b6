"""The database statements one password sign-in costs, counted, so that they cannot creep back.

A sign-in is the hot write path of a login storm: each statement is a round trip and its share
of the event loop's CPU, next to the argon2 hash that should be nearly all of the cost. Counted
at the driver (asyncpg), so statements sent without SQLAlchemy (`Database.call_scoped`) and a
transaction's `BEGIN` and `COMMIT` count too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, select, update

from bigfootlive.models import AuditRecord, AuthSession, LoginLockout, User
from tests.fixtures.factories import PASSWORD

# asyncpg protocol calls that execute SQL (one round trip each on a warm connection); a
# statement's first use on a connection also prepares it (not counted: the pool's connections
# are warm or not by chance).
_EXECUTIONS = {"query", "bind_execute", "bind_execute_many", "execute"}
# asyncpg's own look-up of a type it has not decoded yet on a connection (the `users` row that
# `bfl_sign_in_read` returns), once per connection: not the sign-in's.
_INTROSPECTION = ("typeinfo_tree", "set_config('jit'")


class _Recording:
    """In front of an asyncpg connection's protocol: records the SQL each execution sends."""

    def __init__(self, protocol: Any, sent: list[str]) -> None:
        self.protocol = protocol
        self.sent = sent

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.protocol, name)
        if name not in _EXECUTIONS:
            return method

        def recorded(*args: Any, **kwargs: Any) -> Any:
            sent = args[0] if args else kwargs.get("state", kwargs.get("query"))
            sql = sent if isinstance(sent, str) else sent.query
            if not any(mark in sql for mark in _INTROSPECTION):
                self.sent.append(sql)
            return method(*args, **kwargs)

        return recorded


@contextmanager
def counted(db: Any) -> Iterator[list[str]]:
    """The SQL of every statement the database's connections execute meanwhile, in order,
    the engine's and `call_scoped`'s own (`pgcalls.CallPool`) (a simple query with several
    statements, e.g. `BEGIN; SELECT set_config(...)`, counts once: it is one round trip)."""
    statements: list[str] = []
    wrapped: list[Any] = []

    def wrap(driver: Any) -> None:
        if not isinstance(driver._protocol, _Recording):
            driver._protocol = _Recording(driver._protocol, statements)
            wrapped.append(driver)

    def checkout(dbapi_connection: Any, *_: Any) -> None:
        wrap(dbapi_connection.driver_connection)

    calls = db.calls
    take = calls._take

    async def taken() -> Any:
        conn, opened = await take()
        wrap(conn)
        return conn, opened

    event.listen(db.engine.sync_engine, "checkout", checkout)
    calls._take = taken
    try:
        yield statements
    finally:
        del calls._take
        event.remove(db.engine.sync_engine, "checkout", checkout)
        for driver in wrapped:
            driver._protocol = driver._protocol.protocol


async def _sign_in(client, tenant, email):
    body = {"tenant": tenant.slug, "email": email, "password": PASSWORD}
    return await client.post("/api/auth/login", json=body)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_password_sign_in_is_one_read_and_one_write(client, factory, state):
    tenant = await factory.tenant()
    ann = await factory.user(tenant, login=False)
    bob = await factory.user(tenant, login=False)
    with counted(state.db) as first:
        assert (await _sign_in(client, tenant, ann.user.email)).status_code == 200
    # The tenant's first: its row is read in the request's transaction (then kept,
    # `tenants.cache`), so the sign-in goes on in it: BEGIN, the tenant, the row scope, the
    # account, its SSO providers (kept too, `sso.policy_cache`), the write, COMMIT.
    assert len(first) == 7, first
    with counted(state.db) as statements:
        response = await _sign_in(client, tenant, bob.user.email)
    assert response.status_code == 200
    # The account, its lockout record and factor count; then the session, its refresh token,
    # the audit record and last_login_at: one round trip each, in a transaction of its own,
    # so none is held open while the password is hashed.
    assert len(statements) == 2, statements
    assert "bfl_sign_in_read(" in statements[0]
    assert "bfl_sign_in_write(" in statements[1]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_sign_in_after_failures_clears_them_in_the_same_write(client, factory, state):
    tenant = await factory.tenant()
    ann = await factory.user(tenant, login=False)
    await _sign_in(client, tenant, ann.user.email)  # the caches warm
    wrong = {"tenant": tenant.slug, "email": ann.user.email, "password": "not-the-password-42"}
    assert (await client.post("/api/auth/login", json=wrong)).status_code == 401
    with counted(state.db) as statements:
        assert (await _sign_in(client, tenant, ann.user.email)).status_code == 200
    assert len(statements) == 2, statements  # the read, and the write that forgets them
    assert "bfl_sign_in_write(" in statements[1]
    async with state.db.sessionmaker() as session:
        left = await session.execute(
            select(LoginLockout).where(LoginLockout.tenant_id == tenant.id)
        )
        assert left.scalars().all() == []


async def test_the_one_write_records_everything_a_sign_in_leaves(client, factory, state):
    tenant = await factory.tenant()
    ann = await factory.user(tenant, login=False)
    signed_in = await _sign_in(client, tenant, ann.user.email)
    assert signed_in.status_code == 200
    body = signed_in.json()
    refreshed = await client.post(
        "/api/auth/refresh", json={"refresh_token": body["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text  # the session and its token were stored
    async with state.db.sessionmaker() as session:
        user = await session.get(User, ann.user.id)
        assert user is not None
        assert user.last_login_at is not None
        actions = (
            await session.execute(
                select(AuditRecord.action, AuditRecord.result).where(
                    AuditRecord.actor_id == ann.user.id
                )
            )
        ).all()
    assert [tuple(a) for a in actions] == [("auth.login", "success")]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_an_account_deactivated_during_the_hash_gets_no_session(client, factory, state):
    """The read and the write are two transactions, the hash between them: the write lands only
    while the account is still as read (active, same password), else nothing is written."""
    tenant = await factory.tenant()
    ann = await factory.user(tenant, login=False)
    await _sign_in(client, tenant, ann.user.email)  # the caches warm
    verify = state.passwords.verify

    async def deactivated_meanwhile(stored: str | None, password: str) -> tuple[bool, bool]:
        result = await verify(stored, password)
        async with state.db.transaction() as session:
            await session.execute(
                update(User).where(User.id == ann.user.id).values(is_active=False)
            )
        return result

    state.passwords.verify = deactivated_meanwhile
    try:
        refused = await _sign_in(client, tenant, ann.user.email)
    finally:
        state.passwords.verify = verify
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"]["code"] == "invalid_credentials"
    async with state.db.sessionmaker() as session:
        sessions = await session.execute(
            select(AuthSession).where(AuthSession.user_id == ann.user.id)
        )
        assert len(sessions.scalars().all()) == 1  # the first sign-in's only
        last = (
            await session.execute(
                select(AuditRecord.result, AuditRecord.details)
                .where(AuditRecord.actor_id == ann.user.id)
                .order_by(AuditRecord.created_at.desc())
                .limit(1)
            )
        ).one()
    assert tuple(last) == ("failure", {"reason": "account_changed"})
