"""The account pages in process, on both backends: profile, password, sessions, notification
preferences, and the refusals (no session, no CSRF token, bad input: 4xx pages, never 500)."""

from __future__ import annotations

import re
import uuid

import httpx

from tests.fixtures.factories import PASSWORD, Factory
from tests.web.test_pages import HTML, _csrf, _signin

NEW_PASSWORD = "granite-harbour-lantern-77"


async def test_account_pages_send_a_signed_out_browser_to_sign_in(client: httpx.AsyncClient):
    for path in ("/account", "/account/password", "/account/sessions", "/account/security"):
        answer = await client.get(path, headers=HTML)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == f"/signin?next={path}"
    form = await client.get("/signin", headers=HTML)
    posted = await client.post(
        "/account/profile", data={"csrf_token": _csrf(form), "display_name": "X"}, headers=HTML
    )
    assert posted.status_code == 303
    assert posted.headers["location"].startswith("/signin")


async def test_profile_is_saved_and_shown_in_the_header(
    client: httpx.AsyncClient, factory: Factory
):
    tenant = await factory.tenant()
    account = await factory.user(tenant, login=False)
    await _signin(client, tenant.slug, account.user.email)
    form = await client.get("/account", headers=HTML)
    assert form.status_code == 200
    assert 'href="/account"' in form.text  # the header's link
    assert 'aria-current="page"' in form.text
    saved = await client.post(
        "/account/profile",
        data={"csrf_token": _csrf(form), "display_name": "  Nora North ", "bio": "Hikes."},
        headers=HTML,
    )
    assert saved.status_code == 303
    shown = await client.get(saved.headers["location"], headers=HTML)
    assert "Your profile is saved" in shown.text
    assert "Signed in as <strong>Nora North</strong>" in shown.text
    assert ">Hikes.</textarea>" in shown.text
    # the API sees the same profile
    me = await client.get(f"/api/users/{account.user.id}", headers=_bearer(client))
    assert me.json()["display_name"] == "Nora North"
    # an empty name is refused on the form, the old one kept
    empty = await client.post(
        "/account/profile",
        data={"csrf_token": _csrf(shown), "display_name": "   "},
        headers=HTML,
    )
    assert empty.status_code == 422
    assert "Give a display name" in empty.text
    # without the token: refused, nothing changed
    forged = await client.post("/account/profile", data={"display_name": "Mallory"}, headers=HTML)
    assert forged.status_code == 403
    assert "csrf_failed" in forged.text
    me = await client.get(f"/api/users/{account.user.id}", headers=_bearer(client))
    assert me.json()["display_name"] == "Nora North"


def _bearer(client: httpx.AsyncClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.cookies['bfl_session']}"}


async def test_password_change_checks_the_current_one_and_ends_other_sessions(
    client: httpx.AsyncClient, factory: Factory
):
    tenant = await factory.tenant()
    account = await factory.user(tenant)  # a session through the API: the "other" one
    await _signin(client, tenant.slug, account.user.email)
    form = await client.get("/account/password", headers=HTML)
    fields = {"csrf_token": _csrf(form), "current_password": PASSWORD}
    wrong = await client.post(
        "/account/password",
        data={**fields, "current_password": "not-it-at-all-123", "new_password": NEW_PASSWORD,
              "confirm_password": NEW_PASSWORD},
        headers=HTML,
    )  # fmt: skip
    assert wrong.status_code == 403
    assert "The current password is incorrect" in wrong.text
    differ = await client.post(
        "/account/password",
        data={**fields, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD + "x"},
        headers=HTML,
    )
    assert differ.status_code == 422
    weak = await client.post(
        "/account/password",
        data={**fields, "new_password": "short", "confirm_password": "short"},
        headers=HTML,
    )
    assert 400 <= weak.status_code < 500
    assert 'role="alert"' in weak.text
    assert "it must be at least 12 characters" in weak.text  # what to change, not only "weak"
    changed = await client.post(
        "/account/password",
        data={**fields, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
        headers=HTML,
    )
    assert changed.status_code == 303
    page = await client.get(changed.headers["location"], headers=HTML)
    assert "Your password is changed" in page.text
    assert "Signed in as" in page.text  # this browser stays signed in
    other = await client.get("/api/auth/me", headers=account.headers)
    assert other.status_code == 401  # the other session is over
    login = await client.post(
        "/api/auth/login",
        json={"tenant": tenant.slug, "email": account.user.email, "password": NEW_PASSWORD},
    )
    assert login.status_code == 200


async def test_sessions_list_marks_this_browser_and_revokes_another(
    client: httpx.AsyncClient, factory: Factory
):
    tenant = await factory.tenant()
    account = await factory.user(tenant)  # the API session: another device
    stranger = await factory.user(tenant)
    await _signin(client, tenant.slug, account.user.email)
    listed = await client.get("/account/sessions", headers=HTML)
    assert listed.status_code == 200
    rows = re.findall(r'<tr( class="current")? data-session-id="([^"]+)"', listed.text)
    assert len(rows) == 2
    current = [sid for mark, sid in rows if mark]
    others = [sid for mark, sid in rows if not mark]
    assert others == [account.session_id]
    assert len(current) == 1
    assert listed.text.count("This browser") == 1
    token = _csrf(listed)
    # someone else's session, or one that does not exist: not found, nothing ended
    for sid in (stranger.session_id, str(uuid.uuid4())):
        missing = await client.post(
            f"/account/sessions/{sid}/revoke", data={"csrf_token": token}, headers=HTML
        )
        assert missing.status_code == 404
    assert (await client.get("/api/auth/me", headers=stranger.headers)).status_code == 200
    bad = await client.post(
        "/account/sessions/not-a-uuid/revoke", data={"csrf_token": token}, headers=HTML
    )
    assert bad.status_code == 422
    no_token = await client.post(f"/account/sessions/{account.session_id}/revoke", headers=HTML)
    assert no_token.status_code == 403
    assert (await client.get("/api/auth/me", headers=account.headers)).status_code == 200
    revoked = await client.post(
        f"/account/sessions/{account.session_id}/revoke", data={"csrf_token": token}, headers=HTML
    )
    assert revoked.status_code == 303
    assert (await client.get("/api/auth/me", headers=account.headers)).status_code == 401
    after = await client.get(revoked.headers["location"], headers=HTML)
    assert "The session is ended" in after.text
    assert account.session_id not in after.text
    # ending this browser's own session signs it out
    ended = await client.post(
        f"/account/sessions/{current[0]}/revoke", data={"csrf_token": _csrf(after)}, headers=HTML
    )
    assert ended.status_code == 303
    assert ended.headers["location"] == "/signin"
    home = await client.get("/", headers=HTML)
    assert "Signed in as" not in home.text


async def test_notification_preferences_round_trip_with_the_api(
    client: httpx.AsyncClient, factory: Factory
):
    tenant = await factory.tenant()
    account = await factory.user(tenant, login=False)
    await _signin(client, tenant.slug, account.user.email)
    form = await client.get("/account/notifications", headers=HTML)
    assert form.text.count("checked") == 2  # both on by default
    saved = await client.post(
        "/account/notifications",
        data={"csrf_token": _csrf(form), "realtime_event_live": "true"},  # email unchecked
        headers=HTML,
    )
    assert saved.status_code == 303
    prefs = await client.get("/api/notifications/preferences", headers=_bearer(client))
    assert prefs.json() == {"email_event_live": False, "realtime_event_live": True}
    shown = await client.get(saved.headers["location"], headers=HTML)
    assert "Your preferences are saved" in shown.text
    assert shown.text.count(" checked") == 1
