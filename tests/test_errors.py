"""Bad input the database cannot store is the client's error (4xx), never a 500; a busy
database is a 503 to retry."""

from __future__ import annotations

import sqlite3
import uuid

import coredis.exceptions
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from bigfootlive.authz.roles import Role
from bigfootlive.http_errors import install_error_handlers, unavailable
from bigfootlive.kit.ratelimit import RateLimiter
from tests.fixtures import services


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


DEEP_ARRAY = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECT = b'{"a":' * 10_000 + b"1" + b"}" * 10_000


async def test_deeply_nested_json_bodies_are_400_malformed_json(factory, client):
    tenant = await factory.tenant("acme")
    admin = await factory.user(tenant, role=Role.ADMIN)
    json_type = {"content-type": "application/json"}

    for body in (DEEP_ARRAY, DEEP_OBJECT):
        anonymous = await client.post("/api/auth/login", content=body, headers=json_type)
        signed_in = await client.put(
            "/api/tenant/info", content=body, headers={**admin.headers, **json_type}
        )
        for response in (anonymous, signed_in):
            assert response.status_code == 400, response.text
            assert response.json()["error"]["code"] == "malformed_json"

    info = await client.get("/api/tenant/info", headers=admin.headers)
    assert info.json()["name"] == "Acme"


async def test_json_nested_deeper_than_the_limit_is_refused_even_where_python_would_parse_it(
    factory, client
):
    # 500 levels: json.loads would accept it; every body parser refuses the same depth.
    nested = b'{"name": ' + b"[" * 500 + b"]" * 500 + b"}"
    admin = await factory.user(await factory.tenant("acme"), role=Role.ADMIN)

    response = await client.put(
        "/api/tenant/info",
        content=nested,
        headers={**admin.headers, "content-type": "application/json"},
    )

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "malformed_json"


async def test_deeply_nested_json_sent_to_form_endpoints_is_a_client_error(factory, client):
    await factory.tenant("acme")
    for path, content_type in (
        ("/api/auth/sso/callback", "application/json"),
        ("/api/auth/sso/callback", "application/x-www-form-urlencoded"),
        (f"/api/auth/sso/saml/acme/{uuid.uuid4()}/acs", "application/json"),
        (f"/api/auth/sso/saml/acme/{uuid.uuid4()}/acs", "application/x-www-form-urlencoded"),
    ):
        response = await client.post(
            path, content=DEEP_ARRAY, headers={"content-type": content_type}
        )
        assert 400 <= response.status_code < 500, (path, content_type, response.text)
        assert "error" in response.json()
    callback = await client.post(
        "/api/auth/sso/callback", content=DEEP_ARRAY, headers={"content-type": "application/json"}
    )
    assert callback.json()["error"]["code"] == "malformed_json"


async def test_a_recursion_error_anywhere_is_a_400_not_a_500():
    # The last line of defence behind kit.jsonparse: any other parser that recurses per level.
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/deep")
    async def deep() -> None:
        raise RecursionError("maximum recursion depth exceeded")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/deep")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


async def test_fastapi_own_body_parsing_of_deep_json_is_malformed_json_without_json_route():
    # A route that is not a JsonRoute: FastAPI's json.loads raises RecursionError, which it
    # reports as "error parsing the body"; the generic handler still names it malformed JSON.
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/echo")
    async def echo(body: dict[str, object]) -> dict[str, object]:
        return body

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.post(
            "/echo", content=DEEP_ARRAY, headers={"content-type": "application/json"}
        )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


async def test_the_rate_limits_redis_gone_is_a_503_cache_unavailable():
    """The rate limits reach Redis through `limits`' own client (coredis), not redis-py: its
    errors, and an OSError (a broken pipe to a Redis that died) raised in it, are a 503 to
    retry like the cache's (the Redis restart fault test saw 500s before)."""
    limiter = RateLimiter(f"redis://127.0.0.1:{services.free_port()}/0", "t:")
    try:
        with pytest.raises(coredis.exceptions.ConnectionError) as caught:
            await limiter.check("5/minute", "someone")
    finally:
        await limiter.close()
    assert unavailable(caught.value) == (
        "cache_unavailable",
        "The cache is unavailable; retry shortly",
    )
