"""The web app's foundation, in process: pages, the cookie session (issued and checked by the
identity services), CSRF, the Content-Security-Policy, HTML error pages, the watch page's
access rules and the event's `watch_url`."""

from __future__ import annotations

import html
import json
import re

import httpx
import pytest

from bigfootlive.authz.roles import Role
from bigfootlive.web.session import REFRESH_COOKIE, SESSION_COOKIE
from tests.fixtures.factories import PASSWORD, Factory
from tests.mfa.helpers import enrol_totp, totp_code

HTML = {"accept": "text/html"}


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def _signin(client: httpx.AsyncClient, tenant: str, email: str, password: str = PASSWORD):
    form = await client.get("/signin", headers=HTML)
    assert form.status_code == 200
    return await client.post(
        "/signin",
        data={"csrf_token": _csrf(form), "email": email, "password": password, "tenant": tenant},
        headers=HTML,
    )


async def test_pages_carry_a_strict_csp_and_no_inline_script(client: httpx.AsyncClient):
    page = await client.get("/signin", headers=HTML)
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers.get_list("content-security-policy") == [csp]  # one policy, ours
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers.get_list("x-frame-options") == ["DENY"]
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text)  # no inline script
    assert 'for="email"' in page.text
    assert 'id="email"' in page.text


async def test_sign_in_sets_an_httponly_samesite_session_and_sign_out_ends_it(
    client: httpx.AsyncClient, factory: Factory
):
    tenant = await factory.tenant()
    account = await factory.user(tenant, login=False)
    answer = await _signin(client, tenant.slug, account.user.email)
    assert answer.status_code == 303, answer.text
    cookies = answer.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith(f"{SESSION_COOKIE}="))
    assert "HttpOnly" in session_cookie
    assert "SameSite=lax" in session_cookie
    assert "Secure" not in session_cookie  # development: plain http on loopback
    home = await client.get("/", headers=HTML)
    assert "Signed in as" in home.text
    # the cookie holds a session the API knows: its access token works as a bearer
    me = await client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {client.cookies[SESSION_COOKIE]}"}
    )
    assert me.json()["email"] == account.user.email
    out = await client.post("/signout", data={"csrf_token": _csrf(home)}, headers=HTML)
    assert out.status_code == 303
    assert SESSION_COOKIE not in client.cookies
    revoked = await client.get(
        "/api/auth/me", headers={"Authorization": me.request.headers["authorization"]}
    )
    assert revoked.status_code == 401


async def test_wrong_password_is_shown_on_the_form(client: httpx.AsyncClient, factory: Factory):
    tenant = await factory.tenant()
    account = await factory.user(tenant, login=False)
    answer = await _signin(client, tenant.slug, account.user.email, "wrong-password-123456")
    assert answer.status_code == 401
    assert "The email or password is incorrect" in answer.text
    assert SESSION_COOKIE not in client.cookies


async def test_state_changing_requests_without_the_csrf_token_are_refused(
    client: httpx.AsyncClient, factory: Factory
):
    tenant = await factory.tenant()
    account = await factory.user(tenant, login=False)
    await client.get("/signin", headers=HTML)  # has the seed cookie, not the token
    form = {"email": account.user.email, "password": PASSWORD, "tenant": tenant.slug}
    refused = await client.post("/signin", data=form, headers=HTML)
    assert refused.status_code == 403
    assert "csrf_failed" in refused.text
    assert "<html" in refused.text
    forged = await client.post("/signin", data={**form, "csrf_token": "x" * 43}, headers=HTML)
    assert forged.status_code == 403
    json_refused = await client.post("/signout")
    assert json_refused.status_code == 403
    assert json_refused.json()["error"]["code"] == "csrf_failed"
    # a right token from another origin is refused too
    page = await client.get("/signin", headers=HTML)
    other = await client.post(
        "/signin",
        data={**form, "csrf_token": _csrf(page)},
        headers={**HTML, "origin": "https://evil.example"},
    )
    assert other.status_code == 403
    assert SESSION_COOKIE not in client.cookies


async def test_sign_in_with_totp_goes_through_the_challenge(
    client: httpx.AsyncClient, factory: Factory
):
    tenant = await factory.tenant()
    account = await factory.user(tenant)
    _, secret, _ = await enrol_totp(client, account)
    answer = await _signin(client, tenant.slug, account.user.email)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/signin/mfa")
    assert SESSION_COOKIE not in client.cookies
    form = await client.get(answer.headers["location"], headers=HTML)
    wrong = await client.post(
        "/signin/mfa",
        data={"csrf_token": _csrf(form), "code": "000000", "method": "totp"},
        headers=HTML,
    )
    assert wrong.status_code in (400, 401)
    verified = await client.post(
        "/signin/mfa",
        data={"csrf_token": _csrf(form), "code": totp_code(secret, 1), "method": "totp"},
        headers=HTML,
    )
    assert verified.status_code == 303, verified.text
    assert SESSION_COOKIE in client.cookies
    assert REFRESH_COOKIE in client.cookies


async def test_error_pages_are_html_for_browsers_and_json_for_the_api(client: httpx.AsyncClient):
    page = await client.get("/no/such/page", headers=HTML)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Page not found" in page.text
    api = await client.get("/api/no-such", headers=HTML)
    assert api.headers["content-type"].startswith("application/json")
    # an id that is not one (a mistyped or cut link): not found, not "Check the form"
    for path in ("/watch/not-an-id", "/u/12345", "/studio/events/oops"):
        mistyped = await client.get(path, headers=HTML)
        assert mistyped.status_code == 404, path
        assert "Page not found" in mistyped.text
    api = await client.get("/api/events/not-an-id", headers=HTML)
    assert api.status_code == 422  # the API keeps its validation error
    assert api.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize("visibility", ["private", "tenant"])
async def test_watch_page_of_a_restricted_event_is_refused_to_anonymous_visitors(
    client: httpx.AsyncClient, factory: Factory, visibility: str
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    created = await client.post(
        "/api/events", json={"title": "Secret", "visibility": visibility}, headers=streamer.headers
    )
    assert created.status_code == 201
    event = created.json()
    assert event["watch_url"].endswith(f"/watch/{event['id']}")
    refused = await client.get(f"/watch/{event['id']}", headers=HTML)
    assert refused.status_code == 404
    assert event["playback_id"] not in refused.text
    await _signin(client, tenant.slug, streamer.user.email)
    allowed = await client.get(f"/watch/{event['id']}", headers=HTML)
    assert allowed.status_code == 200
    assert f"/hls/{event['playback_id']}.m3u8?token=" in allowed.text
    said = await client.post(
        f"/api/events/{event['id']}/chat", json={"body": "First <i>post</i>"},
        headers=streamer.headers,
    )  # fmt: skip
    assert said.status_code in (200, 201), said.text
    again = await client.get(f"/watch/{event['id']}", headers=HTML)
    assert f'id="m-{said.json()["id"]}"' in again.text  # recent messages come with the page
    assert "First &lt;i&gt;post&lt;/i&gt;" in again.text


async def test_public_watch_page_and_beacons_need_no_sign_in(
    client: httpx.AsyncClient, factory: Factory
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    created = await client.post(
        "/api/events", json={"title": "Open <b>house</b>"}, headers=streamer.headers
    )
    event = created.json()
    listed = await client.get(f"/api/events/{event['id']}")
    assert listed.json()["watch_url"] == event["watch_url"]
    page = await client.get(f"/watch/{event['id']}", headers=HTML)
    assert page.status_code == 200
    assert "Open &lt;b&gt;house&lt;/b&gt;" in page.text  # escaped
    assert "Not started yet" in page.text
    assert "?token=" not in page.text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
    beacon = {"viewer_id": "viewer-123456", "beacons": [{"type": "start", "startup_ms": 900}]}
    not_on_air = await client.post(
        f"/watch/{event['id']}/beacons", json=beacon, headers={"x-csrf-token": token}
    )
    assert not_on_air.status_code == 409  # the analytics service's own rule
    no_token = await client.post(f"/watch/{event['id']}/beacons", json=beacon)
    assert no_token.status_code == 403


async def test_the_watch_page_player_follows_the_events_latency_mode(
    client: httpx.AsyncClient, factory: Factory
):
    """The page hands the player the mode's hls.js live-sync settings (the API's `player`)
    and the mode's playlist (a low event's is its container's 1 s segments)."""
    streamer = await factory.user(await factory.tenant(), role=Role.STREAMER)
    for mode in ("normal", "low"):
        created = await client.post(
            "/api/events", json={"title": mode, "latency_mode": mode}, headers=streamer.headers
        )
        event = created.json()
        info = await client.get(f"/api/streaming/events/{event['id']}/stream")
        page = await client.get(f"/watch/{event['id']}", headers=HTML)
        found = re.search(r'data-player="([^"]+)"', page.text)
        assert found is not None
        assert json.loads(html.unescape(found.group(1))) == info.json()["player"]["hls_js"]
        url = re.search(r'data-hls-url="([^"]+)"', page.text).group(1)
        assert html.unescape(url) == info.json()["hls_url"]
