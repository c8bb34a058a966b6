"""The sign-in's MFA challenge pages for codes sent by SMS (a fake carrier API on loopback)
and email (the SMTP sink), and for backup codes, in process on both backends; wrong codes,
the challenge's lock and a missing challenge or CSRF token."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bigfootlive.web.session import CHALLENGE_COOKIE, SESSION_COOKIE
from tests.fixtures.factories import PASSWORD, Account, Factory
from tests.fixtures.services import SMTPSink
from tests.mfa.fake_twilio import FakeTwilio
from tests.mfa.helpers import emailed_code, enrol_totp
from tests.web.helpers import HTML, alert_of, csrf_of, submit


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def settings_overrides(twilio: FakeTwilio) -> dict[str, Any]:
    return {
        "sms_provider": "twilio",
        "twilio_account_sid": twilio.account_sid,
        "twilio_auth_token": twilio.auth_token,
        "twilio_from_number": twilio.from_number,
        "twilio_api_base_url": twilio.base_url,
    }


async def _enrol(client: httpx.AsyncClient, account: Account, body: dict[str, Any], code: Any):
    setup = await client.post("/api/auth/mfa/setup", json=body, headers=account.headers)
    assert setup.status_code == 201, setup.text
    confirm = await client.post(
        "/api/auth/mfa/setup/confirm",
        json={"factor_id": setup.json()["factor"]["id"], "code": await code()},
        headers=account.headers,
    )
    assert confirm.status_code == 200, confirm.text


async def _password_step(client: httpx.AsyncClient, tenant: str, account: Account) -> str:
    """Sign in with the password; the MFA challenge page's path."""
    answer = await submit(
        client, "/signin", "/signin", email=account.user.email, password=PASSWORD,
        tenant=tenant, next="/studio",
    )  # fmt: skip
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"].startswith("/signin/mfa")
    assert CHALLENGE_COOKIE in client.cookies
    assert SESSION_COOKIE not in client.cookies
    return str(answer.headers["location"])


async def _choose(client: httpx.AsyncClient, button: str) -> httpx.Response:
    """From the challenge page, 'other ways', then the button that sends a code."""
    challenge = await client.get("/signin/mfa?next=/studio", headers=HTML)
    assert 'href="/signin/mfa/other?next=/studio"' in challenge.text
    other = await client.get("/signin/mfa/other?next=/studio", headers=HTML)
    assert other.status_code == 200
    assert button in other.text
    factor = re.search(
        r'name="factor_id" value="([^"]+)">\s*<button type="submit">' + re.escape(button),
        other.text,
    )
    assert factor, other.text
    sent = await client.post(
        "/signin/mfa/send",
        data={"csrf_token": csrf_of(other), "factor_id": factor.group(1), "next": "/studio"},
        headers=HTML,
    )
    assert sent.status_code == 200, sent.text
    return sent


async def _answer(client: httpx.AsyncClient, form: httpx.Response, code: str) -> httpx.Response:
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.text))
    return await client.post("/signin/mfa/code", data={**fields, "code": code}, headers=HTML)


async def test_sign_in_with_an_emailed_code(
    client: httpx.AsyncClient, factory: Factory, smtp_sink: SMTPSink
):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    address = ann.user.email
    await _enrol(client, ann, {"type": "email"}, lambda: emailed_code(smtp_sink, address, count=1))
    landing = await _password_step(client, tenant.slug, ann)
    assert landing == "/signin/mfa/other?next=/studio"  # no app: the codes it can be sent
    form = await _choose(client, "Email a code to")
    assert "We sent a code to" in form.text
    assert address not in form.text  # masked
    code = await emailed_code(smtp_sink, address, count=3)  # the enrolment notice is the 2nd
    wrong = await _answer(client, form, "000000" if code != "000000" else "111111")
    assert wrong.status_code == 401
    assert alert_of(wrong).endswith("4 attempts left.")
    done = await _answer(client, form, code)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/studio"
    assert SESSION_COOKIE in client.cookies
    home = await client.get("/", headers=HTML)
    assert "Signed in as" in home.text


async def test_sign_in_with_a_texted_code(
    client: httpx.AsyncClient, factory: Factory, twilio: FakeTwilio
):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    phone = f"+4477009{random.randint(0, 99_999):05d}"

    async def texted(count: int) -> str:
        message = twilio.wait_for(phone, count=count)[count - 1]
        return re.search(r"\b(\d{6})\b", message["Body"]).group(1)  # type: ignore[union-attr]

    await _enrol(
        client, ann, {"type": "sms", "name": "Work phone", "phone": phone}, lambda: texted(1)
    )
    await _password_step(client, tenant.slug, ann)
    form = await _choose(client, "Text a code to Work phone")
    assert phone not in form.text
    assert 'label for="code">Code from the text message' in form.text
    done = await _answer(client, form, await texted(2))
    assert done.status_code == 303, done.text
    assert SESSION_COOKIE in client.cookies


async def test_sign_in_with_a_backup_code_once(client: httpx.AsyncClient, factory: Factory):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    _, _, backup_codes = await enrol_totp(client, ann)
    landing = await _password_step(client, tenant.slug, ann)
    assert landing == "/signin/mfa?next=/studio"  # the app's code first
    other = await client.get("/signin/mfa/other?next=/studio", headers=HTML)
    assert 'href="/signin/mfa?next=/studio"' in other.text  # back to the app's code
    form = await client.get("/signin/mfa/backup?next=/studio", headers=HTML)
    assert "Backup code" in form.text
    done = await _answer(client, form, backup_codes[0])
    assert done.status_code == 303, done.text
    client.cookies.clear()
    await _password_step(client, tenant.slug, ann)
    form = await client.get("/signin/mfa/backup?next=/studio", headers=HTML)
    reused = await _answer(client, form, backup_codes[0])
    assert reused.status_code == 401
    assert SESSION_COOKIE not in client.cookies


async def test_wrong_codes_lock_the_challenge_and_say_so(
    client: httpx.AsyncClient, factory: Factory, smtp_sink: SMTPSink
):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    await enrol_totp(client, ann)
    await _password_step(client, tenant.slug, ann)
    form = await client.get("/signin/mfa/backup", headers=HTML)
    for left in (4, 3, 2, 1):
        wrong = await _answer(client, form, "aaaa-bbbb")
        assert wrong.status_code == 401
        assert f"{left} attempt" in alert_of(wrong)
    locked = await _answer(client, form, "aaaa-bbbb")
    assert locked.status_code == 429
    assert "this challenge is locked, sign in again" in alert_of(locked)
    assert 'href="/signin?next=/"' in locked.text
    assert CHALLENGE_COOKIE not in client.cookies  # over: the page leads back to sign-in


async def test_challenge_pages_need_a_challenge_and_the_csrf_token(
    client: httpx.AsyncClient, factory: Factory
):
    for path in ("/signin/mfa/other?next=/studio", "/signin/mfa/backup?next=/studio"):
        answer = await client.get(path, headers=HTML)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/signin?next=/studio"
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    _, _, backup_codes = await enrol_totp(client, ann)
    await _password_step(client, tenant.slug, ann)
    refused = await client.post(
        "/signin/mfa/code", data={"method": "backup_code", "code": backup_codes[0]}, headers=HTML
    )
    assert refused.status_code == 403
    assert "csrf_failed" in refused.text
    assert SESSION_COOKIE not in client.cookies
    client.cookies.set(CHALLENGE_COOKIE, "x" * 40)
    bogus = await client.get("/signin/mfa/other", headers=HTML)
    assert bogus.status_code == 401
    assert "sign in again" in alert_of(bogus)
