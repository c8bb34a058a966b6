"""Leaving or restarting a factor's set-up on the account pages, in process on both backends:
Cancel (authenticator app or passkey) forgets the factor not yet confirmed, and only such a
factor (a confirmed one, another's or an unknown id is left alone); once the wrong codes run out
the page offers no code field but "Start again", which forgets the old set-up and shows a new
key."""

from __future__ import annotations

import re
import uuid

import httpx

from bigfootlive.composition import AppState
from bigfootlive.mfa import repository as mfa_repo
from tests.fixtures.factories import Factory
from tests.mfa.helpers import totp_code
from tests.web.helpers import alert_of
from tests.web.test_account_mfa import _enrol_totp
from tests.web.test_pages import HTML, _csrf, _signin


async def _factors(state: AppState, who) -> list[tuple[str, bool]]:
    async with state.db.transaction() as session:
        found = await mfa_repo.user_factors(
            session, who.tenant.id, who.user.id, confirmed_only=False
        )
    return [(str(f.id), f.confirmed_at is not None) for f in found]


async def _start(client: httpx.AsyncClient) -> tuple[httpx.Response, str, str]:
    """The set-up page: (page, secret, factor id)."""
    security = await client.get("/account/security", headers=HTML)
    started = await client.post(
        "/account/mfa/totp", data={"csrf_token": _csrf(security), "name": "Phone"}, headers=HTML
    )
    assert started.status_code == 200, started.text
    secret = re.search(r'data-secret="([A-Z2-7]+)"', started.text)
    factor = re.search(r'name="factor_id" value="([^"]+)"', started.text)
    assert secret
    assert factor
    return started, secret[1], factor[1]


async def test_cancel_forgets_a_set_up_not_yet_confirmed_only(
    client: httpx.AsyncClient, factory: Factory, state: AppState
):
    tenant = await factory.tenant()
    ann = await factory.user(tenant, login=False)
    other = await factory.user(tenant, login=False)
    await _signin(client, tenant.slug, other.user.email)
    _, _, others = await _start(client)  # another member's set-up, left as it is below
    client.cookies.clear()
    await _signin(client, tenant.slug, ann.user.email)
    started, _, factor = await _start(client)
    assert 'action="/account/mfa/cancel"' in started.text
    assert await _factors(state, ann) == [(factor, False)]
    token = _csrf(started)
    no_csrf = await client.post("/account/mfa/cancel", data={"factor_id": factor}, headers=HTML)
    assert no_csrf.status_code == 403
    cancelled = await client.post(
        "/account/mfa/cancel", data={"csrf_token": token, "factor_id": factor}, headers=HTML
    )
    assert cancelled.status_code == 303
    assert cancelled.headers["location"] == "/account/security?cancelled=1"
    assert await _factors(state, ann) == []  # nothing half set up stays
    after = await client.get(cancelled.headers["location"], headers=HTML)
    assert "The set-up was cancelled: nothing was added." in after.text
    assert "None yet" in after.text
    # a confirmed factor is not the set-up's to forget; nor another's, nor an unknown one
    await _enrol_totp(client)
    [(confirmed, is_confirmed)] = await _factors(state, ann)
    assert is_confirmed
    token = _csrf(await client.get("/account/security", headers=HTML))
    for tried in (confirmed, others, str(uuid.uuid4())):
        answer = await client.post(
            "/account/mfa/cancel", data={"csrf_token": token, "factor_id": tried}, headers=HTML
        )
        assert answer.status_code == 303
    assert await _factors(state, ann) == [(confirmed, True)]
    assert await _factors(state, other) == [(others, False)]


async def test_once_the_wrong_codes_run_out_start_again_shows_a_new_key(
    client: httpx.AsyncClient, factory: Factory, state: AppState
):
    tenant = await factory.tenant()
    cid = await factory.user(tenant, login=False)
    await _signin(client, tenant.slug, cid.user.email)
    started, secret, factor = await _start(client)
    near = {totp_code(secret, steps_ahead=d) for d in (-1, 0, 1, 2)}
    wrong = next(c for c in ("000000", "111111", "222222") if c not in near)
    fields = {"csrf_token": _csrf(started), "factor_id": factor, "code": wrong}
    for left in (4, 3, 2, 1, 0):
        answer = await client.post("/account/mfa/totp/confirm", data=fields, headers=HTML)
        assert answer.status_code == 401
        assert alert_of(answer).endswith(f"{left} attempt{'s' if left != 1 else ''} left.")
        # the code field while a code may still be tried; "Start again" once they are used up
        assert ('action="/account/mfa/totp/confirm"' in answer.text) == (left > 0)
        assert ('action="/account/mfa/totp/restart"' in answer.text) == (left == 0)
        assert 'action="/account/mfa/cancel"' in answer.text
    locked = await client.post(
        "/account/mfa/totp/confirm", data={**fields, "code": totp_code(secret)}, headers=HTML
    )
    assert locked.status_code == 429
    assert "Start again" in locked.text
    assert "data-secret" not in locked.text
    again = await client.post(
        "/account/mfa/totp/restart",
        data={"csrf_token": _csrf(locked), "factor_id": factor},
        headers=HTML,
    )
    assert again.status_code == 200, again.text
    fresh = re.search(r'data-secret="([A-Z2-7]+)"', again.text)
    new_factor = re.search(r'name="factor_id" value="([^"]+)"', again.text)
    assert fresh
    assert new_factor
    assert fresh[1] != secret  # a new key
    assert await _factors(state, cid) == [(new_factor[1], False)]  # the old set-up forgotten
    done = await client.post(
        "/account/mfa/totp/confirm",
        data={"csrf_token": _csrf(again), "factor_id": new_factor[1], "code": totp_code(fresh[1])},
        headers=HTML,
    )
    assert done.status_code == 200, done.text
    security = await client.get("/account/security", headers=HTML)
    assert "<strong>Phone</strong>" in security.text  # under the name it was given


async def test_cancel_on_the_passkey_page_forgets_its_set_up(
    client: httpx.AsyncClient, factory: Factory, state: AppState
):
    tenant = await factory.tenant()
    eve = await factory.user(tenant, login=False)
    await _signin(client, tenant.slug, eve.user.email)
    security = await client.get("/account/security", headers=HTML)
    started = await client.post(
        "/account/mfa/passkey", data={"csrf_token": _csrf(security), "name": "Key"}, headers=HTML
    )
    assert started.status_code == 200, started.text
    factor = re.search(r'name="factor_id" value="([^"]+)"', started.text)
    assert factor
    assert 'action="/account/mfa/cancel"' in started.text
    assert await _factors(state, eve) == [(factor[1], False)]
    cancelled = await client.post(
        "/account/mfa/cancel", data={"csrf_token": _csrf(started), "factor_id": factor[1]},
        headers=HTML,
    )  # fmt: skip
    assert cancelled.status_code == 303
    assert await _factors(state, eve) == []
