"""The guided set-up of a first factor at sign-in (web/enrol.py), in process on both backends:
an organisation that requires two-step verification, a member without a factor signs in on the
page, sets up an authenticator app, is signed in and sees the backup codes once; a wrong code
keeps the form, until the wrong codes run out: then a new start (a new key); Cancel forgets the
set-up and the challenge; without the challenge cookie the pages send back to the sign-in; and an
organisation that allows no authenticator app keeps the sign-in page's message."""

from __future__ import annotations

import re

import httpx

from bigfootlive.composition import AppState
from bigfootlive.mfa import repository as mfa_repo
from bigfootlive.tenants.schemas import MfaPolicy
from bigfootlive.web.session import CHALLENGE_COOKIE, SESSION_COOKIE
from tests.fixtures.factories import PASSWORD, Factory
from tests.fixtures.services import SMTPSink, body_of
from tests.mfa.helpers import totp_code
from tests.web.helpers import HTML, alert_of, csrf_of, submit


async def test_a_member_without_a_factor_sets_one_up_and_is_signed_in(
    client: httpx.AsyncClient, factory: Factory, smtp_sink: SMTPSink
) -> None:
    tenant = await factory.tenant(mfa=MfaPolicy(mode="required"))
    ann = await factory.user(tenant, login=False)
    answer = await submit(
        client, "/signin", "/signin", email=ann.user.email, password=PASSWORD,
        tenant=tenant.slug, next="/studio",
    )  # fmt: skip
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/signin/mfa/enrol?next=/studio"
    assert CHALLENGE_COOKIE in client.cookies
    assert SESSION_COOKIE not in client.cookies  # no session before the factor
    intro = await client.get(answer.headers["location"], headers=HTML)
    assert "Set up an authenticator app" in intro.text
    started = await client.post(
        "/signin/mfa/enrol", data={"csrf_token": csrf_of(intro), "next": "/studio"}, headers=HTML
    )
    assert started.status_code == 200, started.text
    secret = re.search(r'data-secret="([A-Z2-7]+)"', started.text)
    factor = re.search(r'name="factor_id" value="([^"]+)"', started.text)
    assert secret, started.text
    assert factor, started.text
    assert "data:image/svg+xml;base64," in started.text  # the QR code
    fields = {"csrf_token": csrf_of(started), "next": "/studio", "factor_id": factor.group(1)}
    wrong = await client.post(
        "/signin/mfa/enrol/confirm", data={**fields, "code": "000000"}, headers=HTML
    )
    assert wrong.status_code == 401
    # the account page's wording (web.outcome.describe): how many are left
    assert alert_of(wrong) == "The verification failed: wrong or expired code. 4 attempts left."
    assert 'action="/signin/mfa/enrol/confirm"' in wrong.text  # the form again
    assert f'data-secret="{secret.group(1)}"' in wrong.text  # with the same key, QR included
    qr = re.compile(r'src="(data:image/svg\+xml;base64,[^"]+)"')
    assert qr.findall(wrong.text) == qr.findall(started.text) != []
    assert secret.group(1) not in wrong.headers.get("location", "")
    assert SESSION_COOKIE not in client.cookies
    done = await client.post(
        "/signin/mfa/enrol/confirm",
        data={**fields, "code": totp_code(secret.group(1))},
        headers=HTML,
    )
    assert done.status_code == 200, done.text
    assert "Two-step verification is set up" in done.text
    assert len(re.findall(r"<li><code>", done.text)) == 10  # the backup codes, once
    assert 'href="/studio"' in done.text  # on to where the sign-in was going
    assert done.headers["cache-control"] == "no-store"
    assert SESSION_COOKIE in client.cookies
    assert CHALLENGE_COOKIE not in client.cookies
    home = await client.get("/", headers=HTML)
    assert "Signed in as" in home.text
    [notice] = await smtp_sink.wait_for(ann.user.email)
    assert "added to your BigfootLive account: Authenticator app." in body_of(notice)
    assert "totp" not in body_of(notice)
    # the next sign-in asks for the app's code, as for any account with a factor
    client.cookies.clear()
    again = await submit(
        client, "/signin", "/signin", email=ann.user.email, password=PASSWORD,
        tenant=tenant.slug,
    )  # fmt: skip
    assert again.headers["location"].startswith("/signin/mfa?")


async def test_the_set_up_pages_need_the_sign_ins_challenge(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    shown = await client.get("/signin/mfa/enrol?next=/studio", headers=HTML)
    assert shown.status_code == 303
    assert shown.headers["location"] == "/signin?next=/studio"
    form = await client.get("/signin", headers=HTML)
    started = await client.post(
        "/signin/mfa/enrol", data={"csrf_token": csrf_of(form), "next": "/"}, headers=HTML
    )
    assert started.status_code == 303
    client.cookies.set(CHALLENGE_COOKIE, "not-a-challenge")
    refused = await client.post(
        "/signin/mfa/enrol", data={"csrf_token": csrf_of(form), "next": "/"}, headers=HTML
    )
    assert refused.status_code == 401
    assert 'href="/signin?next=/"' in refused.text  # sign in again
    no_csrf = await client.post("/signin/mfa/enrol", data={"next": "/"}, headers=HTML)
    assert no_csrf.status_code == 403
    # the challenge page too: an expired or unknown challenge starts the sign-in again
    challenge = await client.get("/signin/mfa?next=/studio", headers=HTML)
    assert challenge.status_code == 303
    assert challenge.headers["location"] == "/signin?next=/studio"
    cleared = challenge.headers.get_list("set-cookie")
    assert any(c.startswith(f"{CHALLENGE_COOKIE}=") and "Max-Age=0" in c for c in cleared), cleared


async def test_without_an_authenticator_app_the_sign_in_page_says_so(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    tenant = await factory.tenant(mfa=MfaPolicy(mode="required", allowed_factors=["email"]))
    bob = await factory.user(tenant, login=False)
    answer = await submit(
        client, "/signin", "/signin", email=bob.user.email, password=PASSWORD,
        tenant=tenant.slug,
    )  # fmt: skip
    assert answer.status_code == 403
    assert "requires two-step verification" in alert_of(answer)
    assert SESSION_COOKIE not in client.cookies


async def test_the_key_is_shown_again_until_the_wrong_codes_run_out_then_a_new_start(
    client: httpx.AsyncClient, factory: Factory, state: AppState
) -> None:
    tenant = await factory.tenant(mfa=MfaPolicy(mode="required"))
    cid = await factory.user(tenant, login=False)
    await submit(
        client, "/signin", "/signin", email=cid.user.email, password=PASSWORD, tenant=tenant.slug
    )
    intro = await client.get("/signin/mfa/enrol", headers=HTML)
    started = await client.post(
        "/signin/mfa/enrol", data={"csrf_token": csrf_of(intro), "next": "/"}, headers=HTML
    )
    secret = re.search(r'data-secret="([A-Z2-7]+)"', started.text)
    factor = re.search(r'name="factor_id" value="([^"]+)"', started.text)
    assert secret, started.text
    assert factor, started.text
    fields = {"csrf_token": csrf_of(started), "next": "/", "factor_id": factor.group(1)}
    near = {totp_code(secret.group(1), steps_ahead=d) for d in (-1, 0, 1, 2)}
    wrong = next(c for c in ("000000", "111111", "222222") if c not in near)
    for left in (4, 3, 2, 1, 0):
        answer = await client.post(
            "/signin/mfa/enrol/confirm", data={**fields, "code": wrong}, headers=HTML
        )
        assert answer.status_code == 401
        assert alert_of(answer).endswith(f"{left} attempt{'s' if left != 1 else ''} left.")
        # the key while a code may still be tried; none once they are used up, but a new start
        assert (f'data-secret="{secret.group(1)}"' in answer.text) == (left > 0)
        assert ('action="/signin/mfa/enrol/confirm"' in answer.text) == (left > 0)
        assert (f'name="replaces" value="{factor.group(1)}"' in answer.text) == (left == 0)
    locked = await client.post(
        "/signin/mfa/enrol/confirm",
        data={**fields, "code": totp_code(secret.group(1))},
        headers=HTML,
    )
    assert locked.status_code == 429
    assert "data-secret" not in locked.text
    assert "Start again" in locked.text  # the challenge is still good: a new set-up
    assert 'action="/signin/mfa/enrol/cancel"' in locked.text
    assert CHALLENGE_COOKIE in client.cookies
    again = await client.post(
        "/signin/mfa/enrol",
        data={"csrf_token": csrf_of(locked), "next": "/", "replaces": factor.group(1)},
        headers=HTML,
    )
    assert again.status_code == 200, again.text
    fresh = re.search(r'data-secret="([A-Z2-7]+)"', again.text)
    new_factor = re.search(r'name="factor_id" value="([^"]+)"', again.text)
    assert fresh
    assert new_factor
    assert fresh.group(1) != secret.group(1)  # a new key
    async with state.db.transaction() as session:  # the old set-up is forgotten
        pending = await mfa_repo.user_factors(session, tenant.id, cid.user.id, confirmed_only=False)
    assert [str(f.id) for f in pending] == [new_factor.group(1)]
    done = await client.post(
        "/signin/mfa/enrol/confirm",
        data={**fields, "factor_id": new_factor.group(1), "code": totp_code(fresh.group(1))},
        headers=HTML,
    )
    assert done.status_code == 200, done.text
    assert SESSION_COOKIE in client.cookies


async def test_cancel_forgets_the_set_up_and_the_challenge(
    client: httpx.AsyncClient, factory: Factory, state: AppState
) -> None:
    tenant = await factory.tenant(mfa=MfaPolicy(mode="required"))
    dee = await factory.user(tenant, login=False)
    for begun in (False, True):  # from the first page, and once the key is shown
        client.cookies.clear()
        await submit(
            client, "/signin", "/signin", email=dee.user.email, password=PASSWORD,
            tenant=tenant.slug, next="/studio",
        )  # fmt: skip
        token = client.cookies[CHALLENGE_COOKIE]
        shown = await client.get("/signin/mfa/enrol?next=/studio", headers=HTML)
        fields = {"csrf_token": csrf_of(shown), "next": "/studio"}
        if begun:
            shown = await client.post("/signin/mfa/enrol", data=fields, headers=HTML)
            factor = re.search(r'name="factor_id" value="([^"]+)"', shown.text)
            assert factor, shown.text
            fields["factor_id"] = factor.group(1)
        assert 'action="/signin/mfa/enrol/cancel"' in shown.text
        cancelled = await client.post("/signin/mfa/enrol/cancel", data=fields, headers=HTML)
        assert cancelled.status_code == 303
        assert cancelled.headers["location"] == "/signin?next=/studio&cancelled=1"
        told = await client.get(cancelled.headers["location"], headers=HTML)
        assert "set-up was cancelled: you are not signed in" in told.text
        assert CHALLENGE_COOKIE not in client.cookies
        assert SESSION_COOKIE not in client.cookies
        async with state.db.transaction() as session:  # nothing half set up is left
            left = await mfa_repo.user_factors(
                session, tenant.id, dee.user.id, confirmed_only=False
            )
        assert left == []
        client.cookies.set(CHALLENGE_COOKIE, token)  # the challenge cannot be resumed
        resumed = await client.post("/signin/mfa/enrol", data=fields, headers=HTML)
        assert resumed.status_code == 401
        assert 'href="/signin?next=/studio"' in resumed.text
