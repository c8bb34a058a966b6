"""The database statements one password sign-in costs, counted, so that they cannot creep back.

A sign-in is the hot write path of a login storm: each statement is a round trip and its share
of the event loop's CPU, next to the argon2 hash that should be nearly all of the cost.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, select

from bigfootlive.models import AuditRecord, LoginLockout, User
from tests.fixtures.factories import PASSWORD


@contextmanager
def counted(engine: Any) -> Iterator[list[str]]:
    statements: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)


async def _sign_in(client, tenant, email):
    body = {"tenant": tenant.slug, "email": email, "password": PASSWORD}
    return await client.post("/api/auth/login", json=body)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_password_sign_in_is_one_read_and_one_write(client, factory, state):
    tenant = await factory.tenant()
    ann = await factory.user(tenant, login=False)
    bob = await factory.user(tenant, login=False)
    with counted(state.db.engine) as first:
        assert (await _sign_in(client, tenant, ann.user.email)).status_code == 200
    # The tenant's first: its row (then the row scope in a statement of its own) and its SSO
    # providers are read, then kept (`tenants.cache`, `sso.policy_cache`).
    assert len(first) == 5, first
    with counted(state.db.engine) as statements:
        response = await _sign_in(client, tenant, bob.user.email)
    assert response.status_code == 200
    # The account, its lockout record and factor count; then the session, its refresh token,
    # the audit record and last_login_at in one statement.
    assert len(statements) == 2, statements
    assert statements[0].lstrip().startswith("SELECT")
    assert statements[1].lstrip().startswith("WITH")


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_sign_in_after_failures_clears_them_in_the_same_write(client, factory, state):
    tenant = await factory.tenant()
    ann = await factory.user(tenant, login=False)
    await _sign_in(client, tenant, ann.user.email)  # the caches warm
    wrong = {"tenant": tenant.slug, "email": ann.user.email, "password": "not-the-password-42"}
    assert (await client.post("/api/auth/login", json=wrong)).status_code == 401
    with counted(state.db.engine) as statements:
        assert (await _sign_in(client, tenant, ann.user.email)).status_code == 200
    assert len(statements) == 2, statements
    assert "DELETE FROM login_lockouts" in statements[1]
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
