"""Codes and challenges expire: run with lifetimes of one and two seconds.

Real time: the lifetimes are TTLs of the cache (Redis keeps its own clock). The tests wait until
the cache has let the code or challenge go, within a bound a little above its lifetime, then
use it.
"""

from __future__ import annotations

import asyncio

import pytest

from bigfootlive.composition import AppState
from bigfootlive.kit.crypto import hash_token
from tests.mfa.helpers import emailed_code, enrol_totp, password_login, totp_code, verify


async def expired(state: AppState, key: str, within: float) -> None:
    """Return once the cache no longer holds `key`; fail if it still does after `within` s."""
    deadline = asyncio.get_running_loop().time() + within
    while await state.cache.get(key) is not None:
        assert asyncio.get_running_loop().time() < deadline, f"{key} outlived its lifetime"
        await asyncio.sleep(0.05)


@pytest.fixture
def settings_overrides():
    return {"mfa_code_ttl_seconds": 1, "mfa_challenge_ttl_seconds": 2}


async def test_an_expired_email_code_is_refused(factory, client, smtp_sink, state):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    setup = await client.post("/api/auth/mfa/setup", json={"type": "email"}, headers=ann.headers)
    code = await emailed_code(smtp_sink, ann.user.email, count=1)
    factor_id = setup.json()["factor"]["id"]
    await expired(state, f"mfa:enrol:{factor_id}:code", within=3.0)
    late = await client.post(
        "/api/auth/mfa/setup/confirm",
        json={"factor_id": factor_id, "code": code},
        headers=ann.headers,
    )
    assert late.status_code == 401
    assert late.json()["error"]["code"] == "invalid_mfa_code"


async def test_an_expired_sign_in_challenge_is_refused(factory, client, state):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    _, secret, _ = await enrol_totp(client, ann)
    challenge = await password_login(client, ann)
    await expired(state, f"mfa:ch:{hash_token(challenge['challenge_token'])}", within=4.0)
    late = await verify(
        client, challenge["challenge_token"], method="totp", code=totp_code(secret, 1)
    )
    assert late.status_code == 401
    assert late.json()["error"]["code"] == "invalid_mfa_challenge"
