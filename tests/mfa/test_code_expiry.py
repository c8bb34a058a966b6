"""Codes and challenges expire: run with lifetimes of one second."""

from __future__ import annotations

import asyncio

import pytest

from tests.mfa.helpers import emailed_code, enrol_totp, password_login, totp_code, verify


@pytest.fixture
def settings_overrides():
    return {"mfa_code_ttl_seconds": 1, "mfa_challenge_ttl_seconds": 2}


async def test_an_expired_email_code_is_refused(factory, client, smtp_sink):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    setup = await client.post("/api/auth/mfa/setup", json={"type": "email"}, headers=ann.headers)
    code = await emailed_code(smtp_sink, ann.user.email, count=1)
    await asyncio.sleep(1.2)
    late = await client.post(
        "/api/auth/mfa/setup/confirm",
        json={"factor_id": setup.json()["factor"]["id"], "code": code},
        headers=ann.headers,
    )
    assert late.status_code == 401
    assert late.json()["error"]["code"] == "invalid_mfa_code"


async def test_an_expired_sign_in_challenge_is_refused(factory, client):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    _, secret, _ = await enrol_totp(client, ann)
    challenge = await password_login(client, ann)
    await asyncio.sleep(2.2)
    late = await verify(
        client, challenge["challenge_token"], method="totp", code=totp_code(secret, 1)
    )
    assert late.status_code == 401
    assert late.json()["error"]["code"] == "invalid_mfa_challenge"
