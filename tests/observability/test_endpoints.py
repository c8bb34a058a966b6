"""Health, readiness, metrics, request ids, security headers and the JSON error body."""

from __future__ import annotations

import re
import uuid

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from bigfootlive.app import create_app
from bigfootlive.authz.roles import Role
from tests.fixtures import services


async def test_health_is_ok(client):
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_ready_checks_database_and_cache(client, backend):
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "cache": "ok"}


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_ready_is_503_when_redis_is_unreachable(settings):
    broken = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    app = create_app(broken)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["cache"].startswith("error")


async def test_ready_is_503_when_the_database_is_unreachable(settings, tmp_path):
    broken = settings.model_copy(
        update={"database_url": "postgresql+asyncpg://postgres@127.0.0.1:1/nothing"}
    )
    app = create_app(broken)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("error")


async def test_metrics_label_requests_by_route_template_not_raw_path(client, factory):
    ann = await factory.user(await factory.tenant())
    await client.get(f"/api/users/{ann.id}", headers=ann.headers)
    await client.get(f"/api/users/{uuid.uuid4()}", headers=ann.headers)
    text = (await client.get("/metrics")).text
    assert 'route="/api/users/{user_id}"' in text
    assert ann.id not in text
    assert "bigfootlive_http_request_duration_seconds_bucket" in text
    assert 'bigfootlive_auth_events_total{action="auth.login",result="success"}' in text


async def test_request_id_is_generated_or_echoed(client):
    generated = await client.get("/health")
    assert len(generated.headers["x-request-id"]) == 32
    echoed = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    for hostile in ("x" * 65, "<script>alert(1)</script>", "a b"):
        response = await client.get("/health", headers={"X-Request-ID": hostile})
        assert response.headers["x-request-id"] != hostile


async def test_security_headers_on_every_response(client):
    response = await client.get("/api/auth/me")
    for header in (
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
        "strict-transport-security",
        "content-security-policy",
    ):
        assert header in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_api_reference_is_served(client):
    for path in ("/docs", "/api-docs"):
        response = await client.get(path)
        assert response.status_code == 200
        assert "swagger" in response.text.lower()
        # Swagger UI from our own /static (works offline), nothing from a CDN
        assets = re.findall(r"""(?:src|href)=["']([^"']+)|url: ['"]([^'"]+)""", response.text)
        urls = [u for pair in assets for u in pair if u]
        assert not [u for u in urls if "://" in u], urls
        ours = [u for u in urls if u.startswith("/static/vendor/swagger-ui")]
        assert len(ours) == 2, urls  # the bundle and its style sheet
        for url in ours:
            asset = await client.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 100_000  # the bundle and its style sheet
    spec = (await client.get("/openapi.json")).json()
    assert "/api/auth/login" in spec["paths"]


async def test_oversized_body_is_413_with_json_error(client):
    response = await client.post(
        "/api/auth/login",
        content=b"{" + b" " * 2_000_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def _chunks(total: int, size: int = 100_000):
    for _ in range(total // size):
        yield b" " * size


async def test_chunked_body_over_the_limit_is_413_with_json_error(client, factory):
    admin = await factory.user(await factory.tenant("acme"), role=Role.ADMIN)
    json_type = {"content-type": "application/json"}

    anonymous = await client.post("/api/auth/login", content=_chunks(2_000_000), headers=json_type)
    signed_in = await client.put(
        "/api/tenant/info", content=_chunks(2_000_000), headers={**admin.headers, **json_type}
    )

    for response in (anonymous, signed_in):
        assert "content-length" not in response.request.headers  # sent chunked
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "payload_too_large"
    assert (await client.get("/api/tenant/info", headers=admin.headers)).json()["name"] == "Acme"


async def test_a_content_length_smaller_than_the_body_does_not_get_it_past_the_limit(client):
    response = await client.post(
        "/api/auth/login",
        content=b"{" + b" " * 2_000_000 + b"}",
        headers={"content-type": "application/json", "content-length": "10"},
    )
    assert response.request.headers["content-length"] == "10"
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_malformed_json_is_400_with_json_error(client):
    response = await client.post(
        "/api/auth/login", content=b'{"email": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


async def test_unknown_route_and_wrong_method_get_json_errors(client):
    missing = await client.get("/api/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = await client.delete("/api/auth/login")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


@pytest.fixture
def settings_overrides():
    return {"cors_origins": "https://app.example.com"}


async def test_cors_allows_only_configured_origins(client):
    allowed = await client.options(
        "/api/auth/login",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    denied = await client.options(
        "/api/auth/login",
        headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in denied.headers


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
@pytest.mark.parametrize(
    "settings_overrides", [{"database_application_name": f"bfl-{uuid.uuid4().hex[:12]}"}]
)
async def test_a_dropped_database_connection_is_a_503_once_then_the_pool_recovers(
    client, factory, settings
):
    admin = await factory.user(await factory.tenant(), role=Role.ADMIN)
    assert (await client.get("/api/tenant/users", headers=admin.headers)).status_code == 200
    # The database server drops every connection of this app (a restart, a failover, an idle
    # kill); other tests' connections to the shared database are left alone.
    conn = await asyncpg.connect(services.asyncpg_dsn(services.PG_ADMIN_URL))
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = $1",
            settings.database_application_name,
        )
    finally:
        await conn.close()
    assert killed >= 1
    first = await client.get("/api/tenant/users", headers=admin.headers)
    if first.status_code != 200:  # the request that met the dead connection
        assert first.status_code == 503
        assert first.json()["error"]["code"] == "database_unavailable"
        assert first.headers["retry-after"] == "1"
    # The pool has replaced its connections: the next requests go through.
    for _ in range(3):
        assert (await client.get("/api/tenant/users", headers=admin.headers)).status_code == 200
