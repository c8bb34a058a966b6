"""Bad input the database cannot store is the client's error (4xx), never a 500; a busy
database is a 503 to retry."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.engine import make_url

from bigfootlive.authz.roles import Role


async def test_nul_character_in_a_body_is_refused_on_postgres_and_nothing_is_written(
    factory, client, backend
):
    tenant = await factory.tenant("acme")
    admin = await factory.user(tenant, role=Role.ADMIN)

    response = await client.put(
        "/api/tenant/info", json={"name": "Ac\x00me"}, headers=admin.headers
    )

    if backend == "postgres":
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "invalid_characters"
        info = await client.get("/api/tenant/info", headers=admin.headers)
        assert info.json()["name"] == "Acme"
    else:  # SQLite stores NUL characters
        assert response.status_code == 200, response.text


async def test_nul_character_in_a_query_parameter_is_not_a_server_error(factory, client):
    tenant = await factory.tenant("acme")
    admin = await factory.user(tenant, role=Role.ADMIN)

    response = await client.get("/api/tenant/users", params={"q": "a\x00b"}, headers=admin.headers)

    assert response.status_code in (200, 422), response.text
    assert response.headers["content-type"] == "application/json"


async def test_nul_character_in_an_anonymous_login_is_not_a_server_error(factory, client):
    await factory.tenant("acme")

    response = await client.post(
        "/api/auth/login",
        json={"tenant": "ac\x00me", "email": "ann@example.com", "password": "whatever-it-is"},
    )

    assert response.status_code in (401, 422), response.text


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_write_that_waited_out_sqlites_busy_timeout_is_a_503_to_retry(
    factory, client, settings
):
    tenant = await factory.tenant()
    ann = await factory.user(tenant, login=False)
    # Another process (a CLI command, a second worker) holds SQLite's one write lock.
    other = sqlite3.connect(make_url(settings.database_url).database, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        response = await client.post(
            "/api/auth/login",
            json={"tenant": tenant.slug, "email": ann.user.email, "password": ann.password},
        )
    finally:
        other.close()
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "database_busy"
    assert response.headers["retry-after"] == "1"
    await factory.login(ann)  # the lock is gone: a retry goes through
