"""Two-step verification pages in process, on both backends: TOTP enrolment through the pages
(wrong code refused, backup codes shown once), the step-up a sensitive action asks for, removal,
and the passkey pages' refusals (the ceremonies run in Chromium: test_browser_account.py)."""

from __future__ import annotations

import base64
import html
import json
import re
import uuid
from typing import Any

import httpx

from tests.fixtures.factories import Factory
from tests.fixtures.services import SMTPSink, body_of
from tests.mfa.authenticator import SoftAuthenticator
from tests.mfa.helpers import totp_code
from tests.web.helpers import alert_of
from tests.web.test_pages import HTML, _csrf, _signin


def _qr(answer: httpx.Response) -> str:
    found = re.search(r'src="(data:image/svg\+xml;base64,[^"]+)"', answer.text)
    assert found, answer.text
    return found[1]


async def _enrol_totp(client: httpx.AsyncClient) -> tuple[str, list[str]]:
    """(secret, backup codes) of an authenticator app enrolled through the pages."""
    security = await client.get("/account/security", headers=HTML)
    assert "None yet" in security.text
    started = await client.post(
        "/account/mfa/totp", data={"csrf_token": _csrf(security), "name": "Phone"}, headers=HTML
    )
    assert started.status_code == 200, started.text
    assert 'src="data:image/svg+xml;base64,' in started.text  # the QR code, drawn server-side
    secret = re.search(r'data-secret="([A-Z2-7]+)"', started.text)
    factor = re.search(r'name="factor_id" value="([^"]+)"', started.text)
    assert secret
    assert factor
    token = _csrf(started)
    wrong = await client.post(
        "/account/mfa/totp/confirm",
        data={"csrf_token": token, "factor_id": factor[1], "code": "000000"},
        headers=HTML,
    )
    assert wrong.status_code == 401
    # the sign-in's wording (web.outcome.describe), and the same key again to try another code
    assert alert_of(wrong) == "The verification failed: wrong or expired code. 4 attempts left."
    assert f'data-secret="{secret[1]}"' in wrong.text
    assert started.text.count("data:image/svg+xml;base64,") == 1
    assert _qr(started) == _qr(wrong)
    assert f'name="factor_id" value="{factor[1]}"' in wrong.text
    confirmed = await client.post(
        "/account/mfa/totp/confirm",
        data={"csrf_token": token, "factor_id": factor[1], "code": totp_code(secret[1])},
        headers=HTML,
    )
    assert confirmed.status_code == 200, confirmed.text
    assert "Shown only this once" in confirmed.text
    assert confirmed.headers["cache-control"] == "no-store"  # no copy kept by the browser
    codes = re.findall(r"<li><code>([^<]+)</code></li>", confirmed.text)
    assert len(codes) == 10
    return secret[1], codes


async def test_totp_enrolment_shows_backup_codes_once_and_signs_in_with_the_challenge(
    client: httpx.AsyncClient, factory: Factory, smtp_sink: SMTPSink
):
    tenant = await factory.tenant()
    account = await factory.user(tenant, login=False)
    await _signin(client, tenant.slug, account.user.email)
    _, codes = await _enrol_totp(client)
    [notice] = await smtp_sink.wait_for(account.user.email)
    said = body_of(notice)
    assert "added to your BigfootLive account: Phone (authenticator app)." in said, said
    security = await client.get("/account/security", headers=HTML)
    assert "<strong>Phone</strong>" in security.text
    assert "10 unused backup codes left" in security.text
    assert not any(code in security.text for code in codes)  # never shown again
    factors = await client.get(
        "/api/auth/mfa/factors",
        headers={"Authorization": f"Bearer {client.cookies['bfl_session']}"},
    )
    assert [f["type"] for f in factors.json()["factors"]] == ["totp"]
    await client.post("/signout", data={"csrf_token": _csrf(security)}, headers=HTML)
    answer = await _signin(client, tenant.slug, account.user.email)
    assert answer.headers["location"].startswith("/signin/mfa")
    form = await client.get(answer.headers["location"], headers=HTML)
    # no passkey on this account (nor SMS or email): the page offers neither
    assert "Use a passkey instead" not in form.text
    assert "Other ways to verify: a backup code" in form.text
    # the passkey route, posted anyway, says so on the challenge page
    no_passkey = await client.post(
        "/signin/mfa/passkey", data={"csrf_token": _csrf(form)}, headers=HTML
    )
    assert no_passkey.status_code == 400
    assert "Your account has no passkey" in no_passkey.text
    backup = await client.post(
        "/signin/mfa",
        data={"csrf_token": _csrf(form), "code": codes[0], "method": "backup_code"},
        headers=HTML,
    )
    assert backup.status_code == 303, backup.text
    assert (
        "9 unused backup codes left" in (await client.get("/account/security", headers=HTML)).text
    )


async def test_a_sensitive_change_asks_for_a_step_up_and_the_cookie_is_renewed(
    client: httpx.AsyncClient, factory: Factory
):
    tenant = await factory.tenant()
    account = await factory.user(tenant, login=False)
    await _signin(client, tenant.slug, account.user.email)  # password only: amr pwd
    secret, _ = await _enrol_totp(client)
    before = client.cookies["bfl_session"]
    security = await client.get("/account/security", headers=HTML)
    # a second factor on an account that has one: step-up first (as the API's setup)
    asked = await client.post(
        "/account/mfa/passkey", data={"csrf_token": _csrf(security)}, headers=HTML
    )
    assert asked.status_code == 401
    assert "Confirm it is you" in asked.text
    assert "the code of your authenticator app" in asked.text
    assert "bfl_step_up" in client.cookies
    token = _csrf(asked)
    shown = re.search(r'name="challenge" value="([^"]*)"', asked.text)
    assert shown
    fields = {"csrf_token": token, "method": "totp", "challenge": shown[1]}
    wrong = await client.post("/account/verify", data={**fields, "code": "123456"}, headers=HTML)
    assert wrong.status_code == 401
    assert "attempts left" in wrong.text
    assert "the code of your authenticator app" in wrong.text  # the same choices again
    # a tampered form (the challenge's shown part is only for display): still a 4xx page
    odd = base64.urlsafe_b64encode(json.dumps({"methods": 1, "factors": [[1], {"type": "webauthn",
        "id": "x"}]}).encode()).decode()  # fmt: skip
    for shown_part in ("%%%", odd):
        tampered = await client.post(
            "/account/verify", data={**fields, "challenge": shown_part, "code": "1"}, headers=HTML
        )
        assert tampered.status_code == 401
        assert "Confirm it is you" in tampered.text
    bad_method = await client.post(
        "/account/verify", data={**fields, "method": "magic", "code": "1"}, headers=HTML
    )
    assert bad_method.status_code == 422
    verified = await client.post(
        "/account/verify", data={**fields, "code": totp_code(secret, 1)}, headers=HTML
    )
    assert verified.status_code == 303, verified.text
    assert verified.headers["location"] == "/account/security?verified=1"
    assert client.cookies["bfl_session"] != before
    assert "bfl_step_up" not in client.cookies
    # now allowed: the passkey's creation options for the browser
    security = await client.get(verified.headers["location"], headers=HTML)
    assert "Verified: you can now make the change" in security.text
    started = await client.post(
        "/account/mfa/passkey", data={"csrf_token": _csrf(security)}, headers=HTML
    )
    assert started.status_code == 200, started.text
    options = re.search(r"data-options='([^']+)'", started.text)
    assert options
    parsed = json.loads(html.unescape(options[1]))
    assert parsed["rp"]["id"] == "testserver"
    assert parsed["user"]["name"] == account.user.email
    factor = re.search(r'name="factor_id" value="([^"]+)"', started.text)
    assert factor
    # a forged or broken answer is refused on a page, not a 500
    for credential in ("not json", json.dumps({"id": "x", "rawId": "x", "response": {}})):
        refused = await client.post(
            "/account/mfa/passkey/confirm",
            data={"csrf_token": _csrf(started), "factor_id": factor[1], "credential": credential},
            headers=HTML,
        )
        assert 400 <= refused.status_code < 500, refused.text
    # new backup codes: allowed within the step-up's freshness
    fresh = await client.post(
        "/account/mfa/backup-codes", data={"csrf_token": _csrf(started)}, headers=HTML
    )
    assert fresh.status_code == 200
    assert len(re.findall(r"<li><code>", fresh.text)) == 10


def _options(page: httpx.Response) -> dict[str, Any]:
    found = re.search(r"data-options='([^']+)'", page.text)
    assert found, page.text
    parsed: dict[str, Any] = json.loads(html.unescape(found[1]))
    return parsed


async def test_passkey_enrolment_and_sign_in_through_the_pages(
    client: httpx.AsyncClient, factory: Factory
):
    """The pages' half of the ceremonies, with the project's software authenticator in place
    of the browser (Chromium's virtual one: test_browser_account.py)."""
    tenant = await factory.tenant()
    account = await factory.user(tenant, login=False)
    await _signin(client, tenant.slug, account.user.email)
    authenticator = SoftAuthenticator()
    security = await client.get("/account/security", headers=HTML)
    started = await client.post(
        "/account/mfa/passkey", data={"csrf_token": _csrf(security), "name": "Key"}, headers=HTML
    )
    assert started.status_code == 200
    factor = re.search(r'name="factor_id" value="([^"]+)"', started.text)
    assert factor
    confirmed = await client.post(
        "/account/mfa/passkey/confirm",
        data={"csrf_token": _csrf(started), "factor_id": factor[1],
              "credential": json.dumps(authenticator.create(_options(started)))},
        headers=HTML,
    )  # fmt: skip
    assert confirmed.status_code == 200, confirmed.text
    assert "Key now protects your account" in confirmed.text
    assert len(re.findall(r"<li><code>", confirmed.text)) == 10
    await client.post("/signout", data={"csrf_token": _csrf(confirmed)}, headers=HTML)
    answer = await _signin(client, tenant.slug, account.user.email)
    challenge = await client.get(answer.headers["location"], headers=HTML)
    prepared = await client.post(
        "/signin/mfa/passkey", data={"csrf_token": _csrf(challenge), "next": "/account"},
        headers=HTML,
    )  # fmt: skip
    assert prepared.status_code == 200
    options = _options(prepared)
    assert options["allowCredentials"][0]["id"] == authenticator.credential_id_b64
    # an assertion made for another site is refused on the page, with fresh options
    phished = await client.post(
        "/signin/mfa/passkey/verify",
        data={"csrf_token": _csrf(prepared), "next": "/account",
              "credential": json.dumps(authenticator.get(options, origin="https://evil.example"))},
        headers=HTML,
    )  # fmt: skip
    assert phished.status_code == 401
    assert "attempts left" in phished.text
    assert "bfl_session" not in client.cookies
    signed_in = await client.post(
        "/signin/mfa/passkey/verify",
        data={"csrf_token": _csrf(phished), "next": "/account",
              "credential": json.dumps(authenticator.get(_options(phished)))},
        headers=HTML,
    )  # fmt: skip
    assert signed_in.status_code == 303, signed_in.text
    assert signed_in.headers["location"] == "/account"
    sessions = await client.get("/api/auth/sessions", headers={
        "Authorization": f"Bearer {client.cookies['bfl_session']}"})  # fmt: skip
    current = next(s for s in sessions.json() if s["current"])
    assert "hwk" in current["amr"]


async def test_removing_a_factor_and_another_accounts_factor_is_not_found(
    client: httpx.AsyncClient, factory: Factory
):
    tenant = await factory.tenant()
    account = await factory.user(tenant, login=False)
    await _signin(client, tenant.slug, account.user.email)
    secret, _ = await _enrol_totp(client)
    security = await client.get("/account/security", headers=HTML)
    factor_id = re.search(r'action="/account/mfa/factors/([^/]+)/remove"', security.text)
    assert factor_id
    token = _csrf(security)
    missing = await client.post(
        f"/account/mfa/factors/{uuid.uuid4()}/remove", data={"csrf_token": token}, headers=HTML
    )
    assert missing.status_code in (401, 404)  # a step-up first, or not found
    no_csrf = await client.post(f"/account/mfa/factors/{factor_id[1]}/remove", headers=HTML)
    assert no_csrf.status_code == 403
    asked = await client.post(
        f"/account/mfa/factors/{factor_id[1]}/remove", data={"csrf_token": token}, headers=HTML
    )
    assert asked.status_code == 401  # step-up: the session proved only the password
    shown = re.search(r'name="challenge" value="([^"]*)"', asked.text)
    assert shown
    await client.post(
        "/account/verify",
        data={"csrf_token": _csrf(asked), "method": "totp", "challenge": shown[1],
              "code": totp_code(secret, 1)},
        headers=HTML,
    )  # fmt: skip
    missing = await client.post(
        f"/account/mfa/factors/{uuid.uuid4()}/remove", data={"csrf_token": token}, headers=HTML
    )
    assert missing.status_code == 404
    removed = await client.post(
        f"/account/mfa/factors/{factor_id[1]}/remove", data={"csrf_token": token}, headers=HTML
    )
    assert removed.status_code == 303
    after = await client.get(removed.headers["location"], headers=HTML)
    assert "The sign-in method is removed" in after.text
    assert "None yet" in after.text


async def test_passkey_sign_in_pages_refuse_without_a_challenge_or_with_a_bad_answer(
    client: httpx.AsyncClient, factory: Factory
):
    form = await client.get("/signin", headers=HTML)
    token = _csrf(form)
    no_challenge = await client.post(
        "/signin/mfa/passkey", data={"csrf_token": token}, headers=HTML
    )
    assert no_challenge.status_code == 303
    assert no_challenge.headers["location"].startswith("/signin")
    no_csrf = await client.post("/signin/mfa/passkey/verify", data={"credential": "{}"})
    assert no_csrf.status_code == 403
    client.cookies.set("bfl_mfa_challenge", "made-up-token", domain="testserver.local")
    made_up = await client.post(
        "/signin/mfa/passkey/verify",
        data={"csrf_token": token, "credential": json.dumps({"id": "abc"})},
        headers=HTML,
    )
    assert made_up.status_code == 401  # no such challenge: the sign-in starts again
    assert "The MFA challenge is invalid, used or expired" in made_up.text
    assert 'action="/signin"' in made_up.text
    assert "bfl_session" not in client.cookies
    assert "bfl_mfa_challenge" not in client.cookies
