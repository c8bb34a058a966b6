from __future__ import annotations

from sqlalchemy import select

from bigfootlive.models import MfaFactor
from tests.mfa.authenticator import SoftAuthenticator
from tests.mfa.helpers import audit_actions, password_login, use_tokens, verify


async def _enrol_passkey(client, account, authenticator):
    setup = await client.post(
        "/api/auth/mfa/setup", json={"type": "webauthn", "name": "Laptop"}, headers=account.headers
    )
    assert setup.status_code == 201, setup.text
    options = setup.json()["webauthn_options"]
    assert options["rp"]["id"] == "testserver"
    assert options["attestation"] == "none"
    confirm = await client.post(
        "/api/auth/mfa/setup/confirm",
        json={
            "factor_id": setup.json()["factor"]["id"],
            "credential": authenticator.create(options),
        },
        headers=account.headers,
    )
    assert confirm.status_code == 200, confirm.text
    return setup.json()["factor"]["id"]


async def _assertion_options(client, token, factor_id):
    prepared = await client.post(
        "/api/auth/mfa/challenge", json={"challenge_token": token, "factor_id": factor_id}
    )
    assert prepared.status_code == 200, prepared.text
    return prepared.json()["webauthn_options"]


async def test_passkey_enrolment_and_sign_in(factory, client, state):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    authenticator = SoftAuthenticator()
    factor_id = await _enrol_passkey(client, ann, authenticator)

    challenge = await password_login(client, ann)
    assert challenge["status"] == "mfa_required"
    assert "webauthn" in challenge["methods"]
    options = await _assertion_options(client, challenge["challenge_token"], factor_id)
    assert options["allowCredentials"][0]["id"] == authenticator.credential_id_b64
    done = await verify(
        client,
        challenge["challenge_token"],
        method="webauthn",
        credential=authenticator.get(options),
    )
    assert done.status_code == 200, done.text
    assert state.tokens.decode(done.json()["access_token"]).amr == ("pwd", "hwk", "mfa")
    use_tokens(ann, done.json())
    assert (await client.get("/api/auth/me", headers=ann.headers)).status_code == 200

    async with state.db.sessionmaker() as session:
        factor = (
            await session.execute(select(MfaFactor).where(MfaFactor.tenant_id == tenant.id))
        ).scalar_one()
    assert factor.sign_count == 1
    assert factor.credential_id == authenticator.credential_id_b64
    actions = await audit_actions(state, ann.id)
    assert ("auth.mfa.enrol", "success") in actions
    assert ("auth.mfa.verify", "success") in actions


async def test_passkey_with_a_counter_that_went_back_is_refused(factory, client):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    authenticator = SoftAuthenticator()
    factor_id = await _enrol_passkey(client, ann, authenticator)
    for _ in range(2):
        challenge = await password_login(client, ann)
        options = await _assertion_options(client, challenge["challenge_token"], factor_id)
        ok = await verify(
            client,
            challenge["challenge_token"],
            method="webauthn",
            credential=authenticator.get(options),
        )
        assert ok.status_code == 200, ok.text
    # A clone of the authenticator, made when its counter was 1, signs with counter 2 again.
    challenge = await password_login(client, ann)
    options = await _assertion_options(client, challenge["challenge_token"], factor_id)
    cloned = await verify(
        client,
        challenge["challenge_token"],
        method="webauthn",
        credential=authenticator.get(options, sign_count=2),
    )
    assert cloned.status_code == 401
    assert cloned.json()["error"]["code"] == "invalid_mfa_code"


async def test_passkey_assertion_from_another_origin_is_refused(factory, client):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    authenticator = SoftAuthenticator()
    factor_id = await _enrol_passkey(client, ann, authenticator)
    challenge = await password_login(client, ann)
    options = await _assertion_options(client, challenge["challenge_token"], factor_id)
    phished = await verify(
        client,
        challenge["challenge_token"],
        method="webauthn",
        credential=authenticator.get(options, origin="https://evil.example"),
    )
    assert phished.status_code == 401


async def test_passkey_assertion_signed_for_an_old_challenge_is_refused(factory, client):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    authenticator = SoftAuthenticator()
    factor_id = await _enrol_passkey(client, ann, authenticator)
    first = await password_login(client, ann)
    old_options = await _assertion_options(client, first["challenge_token"], factor_id)
    second = await password_login(client, ann)
    await _assertion_options(client, second["challenge_token"], factor_id)
    stale = await verify(
        client,
        second["challenge_token"],
        method="webauthn",
        credential=authenticator.get(old_options),
    )
    assert stale.status_code == 401


async def test_passkey_registration_with_a_wrong_challenge_is_refused(factory, client):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    setup = await client.post("/api/auth/mfa/setup", json={"type": "webauthn"}, headers=ann.headers)
    options = dict(setup.json()["webauthn_options"], challenge="AAAAAAAAAAAAAAAAAAAAAA")
    confirm = await client.post(
        "/api/auth/mfa/setup/confirm",
        json={
            "factor_id": setup.json()["factor"]["id"],
            "credential": SoftAuthenticator().create(options),
        },
        headers=ann.headers,
    )
    assert confirm.status_code == 401
    # Still unconfirmed: the next sign-in is not challenged.
    assert (await password_login(client, ann))["status"] == "ok"
