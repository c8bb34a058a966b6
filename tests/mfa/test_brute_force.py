"""Attempt limits, with small numbers so the tests stay short."""

from __future__ import annotations

import pytest

from tests.mfa.helpers import audit_actions, enrol_totp, password_login, totp_code, verify


@pytest.fixture
def settings_overrides():
    return {"mfa_max_attempts": 2, "mfa_user_failure_limit": 3}


async def test_failures_across_challenges_lock_the_users_mfa(factory, client, state):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    _, secret, _ = await enrol_totp(client, ann)
    first = await password_login(client, ann)
    assert (
        await verify(client, first["challenge_token"], method="totp", code="111111")
    ).status_code == 401
    locked = await verify(client, first["challenge_token"], method="totp", code="111111")
    assert locked.status_code == 429
    # A new password sign-in does not reset the count: the user's MFA is locked for a while.
    second = await password_login(client, ann)
    assert (
        await verify(client, second["challenge_token"], method="totp", code="222222")
    ).status_code == 401
    blocked = await verify(
        client, second["challenge_token"], method="totp", code=totp_code(secret, 1)
    )
    assert blocked.status_code == 429
    assert blocked.json()["error"]["code"] == "mfa_locked"
    assert "Retry-After" in blocked.headers
    assert ("auth.mfa.locked", "failure") in await audit_actions(state, ann.id)


async def test_wrong_codes_lock_an_enrolment(factory, client):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    setup = await client.post("/api/auth/mfa/setup", json={"type": "totp"}, headers=ann.headers)
    factor_id = setup.json()["factor"]["id"]
    for _ in range(2):
        wrong = await client.post(
            "/api/auth/mfa/setup/confirm",
            json={"factor_id": factor_id, "code": "000000"},
            headers=ann.headers,
        )
        assert wrong.status_code == 401
    right = await client.post(
        "/api/auth/mfa/setup/confirm",
        json={"factor_id": factor_id, "code": totp_code(setup.json()["totp"]["secret"])},
        headers=ann.headers,
    )
    assert right.status_code == 429
