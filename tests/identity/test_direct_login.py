"""`POST /api/auth/login` is served past the HTTP stack (`identity.endpoints.DirectLogin`) and
answers as the stack does: the same status, body and headers (the request id, the security
headers, `Cache-Control: no-store`), the metrics and access line, every failure's JSON body; a
body the endpoint refuses is answered by the stack itself."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import structlog
from structlog.testing import capture_logs

from bigfootlive.identity import endpoints
from bigfootlive.observability import middleware
from bigfootlive.observability.metrics import REGISTRY
from tests.fixtures.factories import PASSWORD

LOGIN = "/api/auth/login"
# An Origin header sends the request through the whole stack (CORS applies to it).
THE_STACK = {"origin": "http://spa.example"}


@pytest.fixture
def answered_directly(monkeypatch) -> list[str]:
    """The emails `DirectLogin` answered (past the stack)."""
    seen: list[str] = []
    original = endpoints.DirectLogin.answer

    async def counting(self: Any, request: Any, prepared: Any) -> Any:
        seen.append(str(prepared.email))
        return await original(self, request, prepared)

    monkeypatch.setattr(endpoints.DirectLogin, "answer", counting)
    return seen


def _headers(response: httpx.Response) -> set[str]:
    return {k for k in response.headers if not k.startswith("access-control-")}


def _count(status: str) -> float:
    labels = {"method": "POST", "route": LOGIN, "status": status}
    return REGISTRY.get_sample_value("bigfootlive_http_requests_total", labels) or 0.0


async def test_a_sign_in_answers_past_the_stack_as_the_stack_does(
    client, factory, answered_directly
):
    tenant = await factory.tenant("acme")
    ann = await factory.user(tenant, login=False)
    body = {"tenant": "acme", "email": ann.user.email, "password": PASSWORD}
    direct = await client.post(LOGIN, json=body)
    stacked = await client.post(LOGIN, json=body, headers=THE_STACK)
    assert answered_directly == [ann.user.email]

    assert direct.status_code == stacked.status_code == 200
    assert _headers(direct) == _headers(stacked)
    for name in ("cache-control", "pragma", "content-type", "content-security-policy"):
        assert direct.headers[name] == stacked.headers[name]
    assert direct.headers["cache-control"] == "no-store"
    signed_in, signed_in_too = direct.json(), stacked.json()
    assert signed_in.keys() == signed_in_too.keys()
    assert signed_in["user"] == signed_in_too["user"]
    me = await client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {signed_in['access_token']}"}
    )
    assert me.status_code == 200

    wrong = {**body, "password": "not-the-password-at-all"}
    refused = await client.post(LOGIN, json=wrong)
    refused_stacked = await client.post(LOGIN, json=wrong, headers=THE_STACK)
    assert refused.status_code == refused_stacked.status_code == 401
    assert refused.json() == refused_stacked.json()
    assert refused.json()["error"]["code"] == "invalid_credentials"
    assert _headers(refused) == _headers(refused_stacked)
    assert refused.headers["cache-control"] == "no-store"
    assert answered_directly == [ann.user.email] * 2


async def test_request_id_metrics_and_access_line(client, factory, answered_directly, monkeypatch):
    tenant = await factory.tenant("acme")
    ann = await factory.user(tenant, login=False)
    before = _count("200")
    with capture_logs() as logs:
        # a logger not yet used (a used one is cached, out of capture_logs' reach)
        monkeypatch.setattr(middleware, "log", structlog.get_logger("bigfootlive.access"))
        response = await client.post(
            LOGIN,
            json={"tenant": "acme", "email": ann.user.email, "password": PASSWORD},
            headers={"X-Request-ID": "app-42"},
        )
    assert answered_directly == [ann.user.email]
    assert response.headers["x-request-id"] == "app-42"
    assert _count("200") == before + 1
    access = [e for e in logs if e["event"] == "request"]
    assert [(e["route"], e["status"], e["method"]) for e in access] == [(LOGIN, 200, "POST")]


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b'{"email": "ann@example.com"', {"content-type": "application/json"}, 400),
        (b'{"email": "not an email", "password": "x"}', {"content-type": "application/json"}, 422),
        (b'{"email": "a@example.com", "password": "x", "extra": 1}', {}, 422),
        (b"", {"content-type": "application/json"}, 422),
        (b'{"email": "a@example.com", "password": "x"}', {"content-type": "text/plain"}, 422),
    ],
    ids=["malformed", "not_an_email", "extra_field", "empty", "text_plain"],
)
async def test_a_body_the_endpoint_refuses_is_answered_by_the_stack(
    client, answered_directly, content, headers, status
):
    headers = {"content-type": "application/json", **headers}
    direct = await client.post(LOGIN, content=content, headers=headers)
    stacked = await client.post(LOGIN, content=content, headers={**headers, **THE_STACK})
    assert direct.status_code == stacked.status_code == status, direct.text
    assert direct.json() == stacked.json()
    assert "error" in direct.json()
    assert _headers(direct) == _headers(stacked)
    assert answered_directly == []


async def test_a_body_over_the_limit_is_413(client, settings, answered_directly):
    too_big = b'{"email": "a@example.com", "password": "' + b"x" * settings.max_body_bytes
    declared = await client.post(
        LOGIN, content=too_big, headers={"content-type": "application/json"}
    )

    async def chunks():
        for _ in range(3):
            yield b"x" * settings.max_body_bytes

    streamed = await client.post(
        LOGIN, content=chunks(), headers={"content-type": "application/json"}
    )
    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "payload_too_large"
        assert "x-request-id" in response.headers
    assert answered_directly == []


@pytest.mark.parametrize("settings_overrides", [{"login_rate_limit": "2/minute"}])
async def test_the_rate_limit_answers_past_the_stack(client, factory, answered_directly):
    tenant = await factory.tenant("acme")
    body = {"tenant": "acme", "email": "nobody@example.com", "password": "not-the-password"}
    statuses = [(await client.post(LOGIN, json=body)).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]
    limited = await client.post(LOGIN, json=body)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"]
    assert "retry-after" in limited.headers
    assert limited.headers["cache-control"] == "no-store"
    assert len(answered_directly) == 4
    assert tenant is not None


async def test_a_sign_in_makes_an_orm_session_only_if_it_uses_one(
    client, factory, state, backend, answered_directly, monkeypatch
):
    """The unit of work makes its session when first used: a password sign-in on PostgreSQL
    whose tenant is cached needs none (`sign_in_pg`'s two calls); on SQLite it uses one."""
    tenant = await factory.tenant("acme")
    ann = await factory.user(tenant, login=False)
    bob = await factory.user(tenant, login=False)
    body = {"tenant": "acme", "password": PASSWORD}
    assert (await client.post(LOGIN, json={**body, "email": ann.user.email})).status_code == 200
    made: list[Any] = []
    make = state.db.sessionmaker

    def counting(*args: Any, **kwargs: Any) -> Any:
        made.append(make(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(state.db, "sessionmaker", counting)
    signed_in = await client.post(LOGIN, json={**body, "email": bob.user.email})
    assert signed_in.status_code == 200, signed_in.text
    assert len(made) == (0 if backend == "postgres" else 1)
    async with state.db.transaction(on_demand=True) as session:
        assert ann.user not in session  # asked without making one
        assert len(made) == (0 if backend == "postgres" else 1)
    assert answered_directly == [ann.user.email, bob.user.email]
