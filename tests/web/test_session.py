"""The browser session renews itself through the identity services: an expired access token in
the cookie is replaced using the refresh token (rotated once, even for concurrent requests of the
same page), and an ended session signs the browser out. A WebSocket takes the session cookie
only from a page of our own origin."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
from starlette.requests import HTTPConnection

from bigfootlive.composition import AppState
from bigfootlive.web.session import REFRESH_COOKIE, SESSION_COOKIE, socket_token
from tests.fixtures.factories import Factory
from tests.web.test_pages import HTML, _signin


def _expired_access(state: AppState, client: httpx.AsyncClient) -> str:
    claims = state.tokens.decode(client.cookies[SESSION_COOKIE])
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    token, _ = state.tokens.issue(
        user_id=claims.user_id,
        tenant_id=claims.tenant_id,
        session_id=claims.session_id,
        roles=list(claims.roles),
        amr=list(claims.amr),
        auth_time=long_ago,
        now=long_ago,
    )
    return token


async def test_an_expired_access_token_is_renewed_once_for_concurrent_requests(
    client: httpx.AsyncClient, factory: Factory, state: AppState
):
    tenant = await factory.tenant()
    account = await factory.user(tenant, login=False)
    await _signin(client, tenant.slug, account.user.email)
    old_refresh = client.cookies[REFRESH_COOKIE]
    domain = next(c.domain for c in client.cookies.jar if c.name == SESSION_COOKIE)
    client.cookies.set(SESSION_COOKIE, _expired_access(state, client), domain=domain, path="/")
    pages = await asyncio.gather(*(client.get("/", headers=HTML) for _ in range(3)))
    assert all("Signed in as" in p.text for p in pages)
    assert client.cookies[REFRESH_COOKIE] != old_refresh  # rotated
    state.tokens.decode(client.cookies[SESSION_COOKIE])  # a fresh, valid access token
    again = await client.get("/", headers=HTML)
    assert "Signed in as" in again.text  # the session was not ended as a token reuse


async def test_a_revoked_session_signs_the_browser_out(client: httpx.AsyncClient, factory: Factory):
    tenant = await factory.tenant()
    account = await factory.user(tenant)  # also signed in through the API
    await _signin(client, tenant.slug, account.user.email)
    sessions = await client.get("/api/auth/sessions", headers=account.headers)
    browser = next(s for s in sessions.json() if not s["current"])
    ended = await client.delete(f"/api/auth/sessions/{browser['id']}", headers=account.headers)
    assert ended.status_code == 204
    page = await client.get("/", headers=HTML)
    assert "Signed in as" not in page.text
    assert SESSION_COOKIE not in client.cookies


def _socket(origin: str | None, host: str = "app.example") -> HTTPConnection:
    headers = [(b"host", host.encode()), (b"cookie", f"{SESSION_COOKIE}=tok".encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    return HTTPConnection({"type": "websocket", "headers": headers, "path": "/ws/events/x"})


def test_a_socket_takes_the_cookie_only_from_our_origin(settings) -> None:
    assert socket_token(_socket("https://app.example"), settings) == "tok"
    assert socket_token(_socket("http://app.example"), settings) == "tok"
    assert socket_token(_socket("https://evil.example"), settings) is None
    assert socket_token(_socket(None), settings) is None  # not a browser page
