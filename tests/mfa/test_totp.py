from __future__ import annotations

from sqlalchemy import select

from bigfootlive.models import MfaFactor
from tests.mfa.helpers import (
    audit_actions,
    enrol_totp,
    password_login,
    totp_code,
    use_tokens,
    verify,
)


async def test_totp_enrolment_then_sign_in_needs_the_code(factory, client, state):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    setup = await client.post(
        "/api/auth/mfa/setup", json={"type": "totp", "name": "Pixel"}, headers=ann.headers
    )
    assert setup.status_code == 201, setup.text
    body = setup.json()
    assert body["factor"]["confirmed"] is False
    assert body["totp"]["otpauth_uri"].startswith("otpauth://totp/")
    assert f"secret={body['totp']['secret']}" in body["totp"]["otpauth_uri"]
    assert body["totp"]["qr_svg"].startswith("<svg")

    # Not confirmed yet: sign-in is not challenged.
    assert (await password_login(client, ann))["status"] == "ok"

    wrong = await client.post(
        "/api/auth/mfa/setup/confirm",
        json={"factor_id": body["factor"]["id"], "code": "000000"},
        headers=ann.headers,
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_mfa_code"
    confirm = await client.post(
        "/api/auth/mfa/setup/confirm",
        json={"factor_id": body["factor"]["id"], "code": totp_code(body["totp"]["secret"])},
        headers=ann.headers,
    )
    assert confirm.status_code == 200, confirm.text
    assert confirm.json()["factor"]["confirmed"] is True
    codes = confirm.json()["backup_codes"]
    assert len(set(codes)) == 10

    challenge = await password_login(client, ann)
    assert challenge["status"] == "mfa_required"
    assert "access_token" not in challenge
    assert challenge["methods"] == ["totp", "backup_code"]
    assert [f["name"] for f in challenge["factors"]] == ["Pixel"]

    # One step ahead is inside the ±1 step window (a phone clock running fast).
    done = await verify(
        client,
        challenge["challenge_token"],
        method="totp",
        code=totp_code(body["totp"]["secret"], steps_ahead=1),
    )
    assert done.status_code == 200, done.text
    tokens = done.json()
    assert tokens["status"] == "ok"
    claims = state.tokens.decode(tokens["access_token"])
    assert claims.amr == ("pwd", "otp", "mfa")
    use_tokens(ann, tokens)
    assert (await client.get("/api/auth/me", headers=ann.headers)).status_code == 200
    sessions = await client.get("/api/auth/sessions", headers=ann.headers)
    current = next(s for s in sessions.json() if s["current"])
    assert current["amr"] == ["pwd", "otp", "mfa"]

    actions = await audit_actions(state, ann.id)
    for step in (
        ("auth.mfa.setup", "success"),
        ("auth.mfa.enrol", "failure"),
        ("auth.mfa.enrol", "success"),
        ("auth.mfa.challenge", "success"),
        ("auth.mfa.verify", "success"),
    ):
        assert step in actions, step


async def test_totp_seed_is_encrypted_at_rest(factory, client, state):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    factor_id, secret, _ = await enrol_totp(client, ann)
    async with state.db.sessionmaker() as session:
        factor = (
            await session.execute(select(MfaFactor).where(MfaFactor.tenant_id == tenant.id))
        ).scalar_one()
    assert str(factor.id) == factor_id
    assert secret not in (factor.secret_ciphertext or "")
    assert state.secrets.decrypt(factor.secret_ciphertext, context=f"mfa-totp:{factor_id}") == (
        secret
    )


async def test_a_totp_code_cannot_be_used_twice(factory, client, state):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    _, secret, _ = await enrol_totp(client, ann)
    code = totp_code(secret, steps_ahead=1)  # later than the step used to confirm
    first = await password_login(client, ann)
    assert (
        await verify(client, first["challenge_token"], method="totp", code=code)
    ).status_code == (200)
    second = await password_login(client, ann)
    replay = await verify(client, second["challenge_token"], method="totp", code=code)
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "invalid_mfa_code"
    # An older code in the window is refused too: steps only move forward.
    older = await verify(client, second["challenge_token"], method="totp", code=totp_code(secret))
    assert older.status_code == 401
    assert ("auth.mfa.verify", "failure") in await audit_actions(state, ann.id)


async def test_wrong_codes_lock_the_challenge(factory, client, state):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    _, secret, _ = await enrol_totp(client, ann)
    challenge = await password_login(client, ann)
    token = challenge["challenge_token"]
    max_attempts = state.settings.mfa_max_attempts
    for attempt in range(1, max_attempts):
        wrong = await verify(client, token, method="totp", code="123456")
        assert wrong.status_code == 401
        assert wrong.json()["error"]["attempts_left"] == max_attempts - attempt
    locked = await verify(client, token, method="totp", code="123456")
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "mfa_challenge_locked"
    # Even the right code is useless now: the challenge is gone.
    late = await verify(client, token, method="totp", code=totp_code(secret, steps_ahead=1))
    assert late.status_code == 401
    assert late.json()["error"]["code"] == "invalid_mfa_challenge"
    assert ("auth.mfa.locked", "failure") in await audit_actions(state, ann.id)


async def test_a_challenge_token_is_single_use(factory, client):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    _, secret, _ = await enrol_totp(client, ann)
    challenge = await password_login(client, ann)
    ok = await verify(
        client, challenge["challenge_token"], method="totp", code=totp_code(secret, steps_ahead=1)
    )
    assert ok.status_code == 200
    again = await verify(
        client, challenge["challenge_token"], method="totp", code=totp_code(secret, steps_ahead=1)
    )
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "invalid_mfa_challenge"


async def test_confirming_totp_twice_is_refused(factory, client):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    factor_id, secret, _ = await enrol_totp(client, ann)
    again = await client.post(
        "/api/auth/mfa/setup/confirm",
        json={"factor_id": factor_id, "code": totp_code(secret, steps_ahead=1)},
        headers=ann.headers,
    )
    assert again.status_code == 409
