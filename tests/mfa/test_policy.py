from __future__ import annotations

import re

from bigfootlive.authz.roles import Role
from bigfootlive.identity import sign_in
from bigfootlive.identity.schemas import MfaChallenge, TokenPair
from bigfootlive.kit.request import RequestMeta
from bigfootlive.tenants.schemas import MfaPolicy
from tests.fixtures.factories import PASSWORD
from tests.fixtures.services import body_of
from tests.mfa.helpers import (
    audit_actions,
    bearer,
    enrol_totp,
    mfa_login,
    password_login,
    totp_code,
    verify,
)

META = RequestMeta(ip="127.0.0.1", user_agent="test", request_id="")


async def test_a_required_policy_guides_enrolment_at_sign_in(factory, client, state):
    tenant = await factory.tenant(mfa=MfaPolicy(mode="required"))
    ann = await factory.user(tenant, login=False)
    challenge = await password_login(client, ann)
    assert challenge["status"] == "mfa_enrollment_required"
    assert "access_token" not in challenge
    assert challenge["factors"] == []
    assert challenge["allowed_factor_types"] == ["totp", "webauthn", "email", "sms"]
    token = challenge["challenge_token"]

    # The enrolment token opens no session by itself.
    refused = await verify(client, token, method="totp", code="123456")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "mfa_enrollment_required"
    assert (await client.get("/api/auth/me", headers=bearer(token))).status_code == 401

    setup = await client.post(
        "/api/auth/mfa/setup", json={"type": "totp", "challenge_token": token}
    )
    assert setup.status_code == 201, setup.text
    secret = setup.json()["totp"]["secret"]
    confirm = await client.post(
        "/api/auth/mfa/setup/confirm",
        json={
            "factor_id": setup.json()["factor"]["id"],
            "code": totp_code(secret),
            "challenge_token": token,
        },
    )
    assert confirm.status_code == 200, confirm.text
    body = confirm.json()
    assert len(body["backup_codes"]) == 10
    session = body["session"]
    assert state.tokens.decode(session["access_token"]).amr == ("pwd", "otp", "mfa")
    me = await client.get("/api/auth/me", headers=bearer(session["access_token"]))
    assert me.status_code == 200

    # The enrolment challenge was used up, and the next sign-in asks for the new factor.
    again = await client.post(
        "/api/auth/mfa/setup", json={"type": "email", "challenge_token": token}
    )
    assert again.status_code == 401
    assert (await password_login(client, ann))["status"] == "mfa_required"
    actions = await audit_actions(state, ann.id)
    assert ("auth.mfa.challenge", "success") in actions
    assert ("auth.mfa.enrol", "success") in actions


async def test_required_for_roles_applies_to_those_roles_only(factory, client):
    tenant = await factory.tenant(
        mfa=MfaPolicy(mode="required_for_roles", roles=[Role.ADMIN, Role.STREAMER])
    )
    viewer = await factory.user(tenant, role=Role.VIEWER, login=False)
    streamer = await factory.user(tenant, role=Role.STREAMER, login=False)
    assert (await password_login(client, viewer))["status"] == "ok"
    assert (await password_login(client, streamer))["status"] == "mfa_enrollment_required"


async def test_a_factor_type_the_tenant_disallows_cannot_be_enrolled(factory, client):
    tenant = await factory.tenant(mfa=MfaPolicy(allowed_factors=["webauthn", "totp"]))
    ann = await factory.user(tenant)
    refused = await client.post(
        "/api/auth/mfa/setup", json={"type": "sms", "phone": "+15005550006"}, headers=ann.headers
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "factor_type_not_allowed"


async def test_admin_sets_the_mfa_policy_through_tenant_info(factory, client, state):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    member = await factory.user(tenant, role=Role.STREAMER, login=False)
    response = await client.put(
        "/api/tenant/info",
        json={"settings": {"mfa": {"mode": "required_for_roles", "roles": ["streamer"]}}},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    mfa = response.json()["settings"]["mfa"]
    assert mfa["mode"] == "required_for_roles"
    assert mfa["roles"] == ["streamer"]
    assert (await password_login(client, member))["status"] == "mfa_enrollment_required"
    assert ("tenant.settings_change", "success") in await audit_actions(state, admin.id)


async def test_an_invalid_mfa_policy_is_refused(factory, client):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    response = await client.put(
        "/api/tenant/info",
        json={"settings": {"mfa": {"mode": "sometimes"}}},
        headers=admin.headers,
    )
    assert response.status_code == 422


async def test_mfa_off_neither_challenges_nor_enrols(factory, client):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    ann = await factory.user(tenant)
    await enrol_totp(client, ann)
    assert (await password_login(client, ann))["status"] == "mfa_required"
    off = await client.put(
        "/api/tenant/info", json={"settings": {"mfa": {"mode": "off"}}}, headers=admin.headers
    )
    assert off.status_code == 200, off.text
    assert (await password_login(client, ann))["status"] == "ok"
    setup = await client.post("/api/auth/mfa/setup", json={"type": "totp"}, headers=ann.headers)
    assert setup.status_code == 403
    assert setup.json()["error"]["code"] == "mfa_disabled"


async def test_an_identity_provider_that_did_mfa_is_not_challenged_again(factory, client, state):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    await enrol_totp(client, ann)
    async with state.db.transaction() as session:
        user = await session.get(type(ann.user), ann.user.id)
        with_mfa = await sign_in.finish_sign_in(
            state, session, user=user, tenant=tenant, meta=META, amr=["ext", "mfa"]
        )
        without = await sign_in.finish_sign_in(
            state, session, user=user, tenant=tenant, meta=META, amr=["ext"]
        )
    assert isinstance(with_mfa, TokenPair)
    assert state.tokens.decode(with_mfa.access_token).amr == ("ext", "mfa")
    assert isinstance(without, MfaChallenge)
    assert without.status == "mfa_required"


async def test_the_last_factor_cannot_be_removed_when_mfa_is_required(factory, client):
    tenant = await factory.tenant(mfa=MfaPolicy(mode="required"))
    ann = await factory.user(tenant, login=False)
    challenge = await password_login(client, ann)
    token = challenge["challenge_token"]
    setup = await client.post(
        "/api/auth/mfa/setup", json={"type": "totp", "challenge_token": token}
    )
    factor_id = setup.json()["factor"]["id"]
    confirm = await client.post(
        "/api/auth/mfa/setup/confirm",
        json={
            "factor_id": factor_id,
            "code": totp_code(setup.json()["totp"]["secret"]),
            "challenge_token": token,
        },
    )
    session = confirm.json()["session"]
    removed = await client.delete(
        f"/api/auth/mfa/factors/{factor_id}", headers=bearer(session["access_token"])
    )
    assert removed.status_code == 409
    assert removed.json()["error"]["code"] == "last_required_factor"


async def test_self_registration_under_a_required_policy_starts_enrolment(
    factory, client, smtp_sink
):
    tenant = await factory.tenant(allow_self_registration=True, mfa=MfaPolicy(mode="required"))
    response = await client.post(
        "/api/auth/register",
        json={
            "tenant": tenant.slug,
            "email": "newcomer@example.com",
            "password": PASSWORD,
            "display_name": "Newcomer",
        },
    )
    assert response.status_code == 202, response.text
    [mail] = await smtp_sink.wait_for("newcomer@example.com")
    token = re.search(r"token=([A-Za-z0-9_\-]+)", body_of(mail))
    assert token
    confirmed = await client.post("/api/auth/email/verify", json={"token": token.group(1)})
    assert confirmed.status_code == 204
    signed_in = await client.post(
        "/api/auth/login",
        json={"tenant": tenant.slug, "email": "newcomer@example.com", "password": PASSWORD},
    )
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["status"] == "mfa_enrollment_required"


async def test_an_optional_policy_lets_unenrolled_users_straight_in(factory, client):
    tenant = await factory.tenant()
    ann = await factory.user(tenant, login=False)
    body = await password_login(client, ann)
    assert body["status"] == "ok"
    assert body["access_token"]


async def test_a_session_from_an_mfa_sign_in_can_add_a_second_factor(factory, client):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    _, secret, _ = await enrol_totp(client, ann)
    # The password-only session that enrolled the first factor cannot add another.
    refused = await client.post("/api/auth/mfa/setup", json={"type": "email"}, headers=ann.headers)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "step_up_required"
    await mfa_login(client, ann, secret)
    added = await client.post("/api/auth/mfa/setup", json={"type": "email"}, headers=ann.headers)
    assert added.status_code == 201
