"""Password recovery and email confirmation pages, in process, on both backends: the emailed
links (read from the SMTP sink) work once, bad or expired ones are refused on the page, the
services' rate limits show their wait, and every form needs its CSRF token."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from bigfootlive.authz.scoping import platform_scope
from bigfootlive.composition import AppState
from bigfootlive.db import utcnow
from bigfootlive.models import UserToken
from bigfootlive.web.session import SESSION_COOKIE
from tests.fixtures.factories import PASSWORD, Factory
from tests.fixtures.services import SMTPSink, body_of
from tests.web.helpers import HTML, alert_of, csrf_of, submit

NEW_PASSWORD = "glacier-orchard-lantern-88"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"reset_rate_limit": "3/minute"}


def _link(message: Any, path: str) -> str:
    found = re.search(rf"http://testserver({path}\?token=[A-Za-z0-9_\-]+)", body_of(message))
    assert found, body_of(message)
    return found.group(1)


async def _ask_reset(client: httpx.AsyncClient, smtp: SMTPSink, tenant: str, email: str) -> str:
    sent = await submit(client, "/forgot-password", "/forgot-password", email=email, tenant=tenant)
    assert sent.status_code == 202, sent.text
    assert "Check your email" in sent.text
    [mail] = await smtp.wait_for(email)
    return _link(mail, "/reset-password")


async def test_password_reset_through_the_pages(
    client: httpx.AsyncClient, factory: Factory, smtp_sink: SMTPSink
):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    link = await _ask_reset(client, smtp_sink, tenant.slug, ann.user.email)
    form = await client.get(link, headers=HTML)
    assert form.status_code == 200
    assert 'for="password"' in form.text
    fields = {"token": link.split("token=")[1], "password": NEW_PASSWORD}
    differ = await submit(client, link, "/reset-password", **fields, confirm=NEW_PASSWORD + "x")
    assert differ.status_code == 422
    assert "differ" in alert_of(differ)
    weak = await submit(client, link, "/reset-password", **{**fields, "password": "x"}, confirm="x")
    assert weak.status_code == 422  # the service's password rules; the link is still good
    done = await submit(client, link, "/reset-password", **fields, confirm=NEW_PASSWORD)
    assert done.status_code == 200, done.text
    assert "Password changed" in done.text
    # the old session is over, the old password refused, the new one signs in
    assert (await client.get("/api/auth/me", headers=ann.headers)).status_code == 401
    old = await submit(
        client, "/signin", "/signin", email=ann.user.email, password=PASSWORD, tenant=tenant.slug
    )
    assert old.status_code == 401
    new = await submit(
        client, "/signin", "/signin", email=ann.user.email, password=NEW_PASSWORD,
        tenant=tenant.slug,
    )  # fmt: skip
    assert new.status_code == 303
    assert SESSION_COOKIE in client.cookies
    # the link is spent: its page says so, and posting it again is refused
    spent = await client.get(link, headers=HTML)
    assert spent.status_code == 400
    assert "invalid, expired or already used" in alert_of(spent)
    again = await submit(
        client, "/forgot-password", "/reset-password", **fields, confirm=NEW_PASSWORD
    )
    assert again.status_code == 400


async def test_bad_and_expired_reset_links_are_refused(
    client: httpx.AsyncClient, factory: Factory, smtp_sink: SMTPSink, state: AppState
):
    bogus = await client.get("/reset-password?token=not-a-token-we-issued", headers=HTML)
    assert bogus.status_code == 400
    assert "invalid, expired or already used" in alert_of(bogus)
    assert 'name="password"' not in bogus.text
    assert (await client.get("/reset-password", headers=HTML)).status_code == 400
    tenant = await factory.tenant()
    ann = await factory.user(tenant, login=False)
    link = await _ask_reset(client, smtp_sink, tenant.slug, ann.user.email)
    with platform_scope("test: the link expires"):
        async with state.db.transaction() as session:
            await session.execute(update(UserToken).values(expires_at=utcnow()))
    expired = await client.get(link, headers=HTML)
    assert expired.status_code == 400
    assert 'href="/forgot-password"' in expired.text
    token = link.split("token=")[1]
    posted = await submit(
        client, "/forgot-password", "/reset-password", token=token, password=NEW_PASSWORD,
        confirm=NEW_PASSWORD,
    )  # fmt: skip
    assert posted.status_code == 400
    assert "invalid, expired or already used" in alert_of(posted)


async def test_an_unknown_address_gets_the_same_answer_and_no_email(
    client: httpx.AsyncClient, factory: Factory, smtp_sink: SMTPSink
):
    tenant = await factory.tenant()
    answer = await submit(
        client, "/forgot-password", "/forgot-password", email="ghost@example.com",
        tenant=tenant.slug,
    )  # fmt: skip
    assert answer.status_code == 202
    assert "ghost@example.com" in answer.text
    assert smtp_sink.to("ghost@example.com") == []
    invalid = await submit(client, "/forgot-password", "/forgot-password", email="not-an-email")
    assert invalid.status_code == 422


async def test_the_reset_rate_limit_shows_its_wait(client: httpx.AsyncClient, factory: Factory):
    tenant = await factory.tenant()
    form = {"email": "someone@example.com", "tenant": tenant.slug}
    for _ in range(3):
        ok = await submit(client, "/forgot-password", "/forgot-password", **form)
        assert ok.status_code == 202
    limited = await submit(client, "/forgot-password", "/forgot-password", **form)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert re.search(r"Too many requests; try again in \d+ seconds?\.", alert_of(limited))


async def test_registration_confirmed_through_the_emailed_link(
    client: httpx.AsyncClient, factory: Factory, smtp_sink: SMTPSink
):
    tenant = await factory.tenant(allow_self_registration=True)
    email = "newcomer@example.com"
    registered = await submit(
        client, "/register", "/register", email=email, display_name="New Comer",
        password=NEW_PASSWORD, tenant=tenant.slug,
    )  # fmt: skip
    assert registered.status_code == 202
    [mail] = await smtp_sink.wait_for(email)
    link = _link(mail, "/verify-email")
    shown = await client.get(link, headers=HTML)  # opening the link spends nothing
    assert shown.status_code == 200
    assert (await client.get(link, headers=HTML)).status_code == 200
    token = link.split("token=")[1]
    no_csrf = await client.post("/verify-email", data={"token": token}, headers=HTML)
    assert no_csrf.status_code == 403
    confirmed = await client.post(
        "/verify-email", data={"csrf_token": csrf_of(shown), "token": token}, headers=HTML
    )
    assert confirmed.status_code == 200
    assert "Your email address is confirmed" in confirmed.text
    signed_in = await submit(
        client, "/signin", "/signin", email=email, password=NEW_PASSWORD, tenant=tenant.slug
    )
    assert signed_in.status_code == 303
    twice = await submit(client, link, "/verify-email", token=token)  # signing in renewed the seed
    assert twice.status_code == 400
    assert "invalid, expired or already used" in alert_of(twice)
    short = await client.get("/verify-email?token=abc", headers=HTML)
    assert short.status_code == 400


async def test_recovery_forms_refuse_a_post_without_the_csrf_token(
    client: httpx.AsyncClient, factory: Factory, smtp_sink: SMTPSink
):
    tenant = await factory.tenant()
    ann = await factory.user(tenant, login=False)
    await client.get("/forgot-password", headers=HTML)  # the seed cookie, not the token
    refused = await client.post(
        "/forgot-password", data={"email": ann.user.email, "tenant": tenant.slug}, headers=HTML
    )
    assert refused.status_code == 403
    assert "csrf_failed" in refused.text
    assert smtp_sink.to(ann.user.email) == []
    link = await _ask_reset(client, smtp_sink, tenant.slug, ann.user.email)
    token = link.split("token=")[1]
    fields = {"token": token, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    assert (await client.post("/reset-password", data=fields, headers=HTML)).status_code == 403
    forged = await client.post("/reset-password", data={**fields, "csrf_token": "x" * 43})
    assert forged.status_code == 403
    # the refused posts spent nothing: the link still works
    done = await submit(client, link, "/reset-password", **fields)
    assert done.status_code == 200


async def test_the_sign_in_lockout_says_how_long(client: httpx.AsyncClient, factory: Factory):
    tenant = await factory.tenant()
    ann = await factory.user(tenant, login=False)
    form = {"email": ann.user.email, "password": "wrong-password-1234", "tenant": tenant.slug}
    for _ in range(5):  # the tenant's default threshold
        wrong = await submit(client, "/signin", "/signin", **form)
        assert wrong.status_code == 401
    locked = await submit(client, "/signin", "/signin", **{**form, "password": PASSWORD})
    assert locked.status_code == 429
    said = re.fullmatch(r"Too many failed sign-ins; try again in (\d+) seconds", alert_of(locked))
    assert said, alert_of(locked)
    assert 20 <= int(said.group(1)) <= 30  # the first lock: 30 s
    # the way out the page offers: a reset lifts the lockout
    assert 'href="/forgot-password"' in locked.text
