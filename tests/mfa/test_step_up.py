from __future__ import annotations

import time

from bigfootlive.authz.roles import Role
from bigfootlive.tenants.schemas import MfaPolicy
from tests.mfa.helpers import (
    audit_actions,
    bearer,
    enrol_totp,
    password_login,
    stale_token,
    totp_code,
    verify,
)


async def _step_up_with_totp(client, state, headers, request, secret):
    """Make `request` fail with step_up_required, answer with TOTP; returns the new token."""
    refused = await request(headers)
    assert refused.status_code == 401, refused.text
    error = refused.json()["error"]
    assert error["code"] == "step_up_required"
    challenge = error["challenge"]
    assert challenge["status"] == "step_up_required"
    assert "totp" in challenge["methods"]
    done = await verify(
        client, challenge["challenge_token"], method="totp", code=totp_code(secret, 1)
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "stepped_up"
    claims = state.tokens.decode(body["access_token"])
    assert "otp" in claims.amr
    assert claims.auth_time >= int(time.time()) - 5
    return body["access_token"]


async def test_deleting_a_factor_needs_a_recent_second_factor(factory, client, state):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    factor_id, secret, _ = await enrol_totp(client, ann)

    async def delete(headers):
        return await client.delete(f"/api/auth/mfa/factors/{factor_id}", headers=headers)

    # ann's session signed in with a password only (before the factor existed).
    token = await _step_up_with_totp(client, state, ann.headers, delete, secret)
    assert (await delete(bearer(token))).status_code == 204
    listed = await client.get("/api/auth/mfa/factors", headers=bearer(token))
    assert listed.json() == {"factors": [], "backup_codes_remaining": 0}
    assert (await password_login(client, ann))["status"] == "ok"
    actions = await audit_actions(state, ann.id)
    assert ("auth.mfa.step_up_required", "failure") in actions
    assert ("auth.mfa.step_up", "success") in actions
    assert ("auth.mfa.factor_delete", "success") in actions


async def test_an_old_mfa_does_not_count_as_recent(factory, client, state):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    factor_id, _, _ = await enrol_totp(client, ann)
    old = stale_token(
        state, ann, ["pwd", "otp", "mfa"], age=state.settings.mfa_step_up_max_age_seconds + 60
    )
    refused = await client.delete(f"/api/auth/mfa/factors/{factor_id}", headers=bearer(old))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "step_up_required"


async def test_creating_and_updating_users_need_step_up(factory, client, state):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    member = await factory.user(tenant, login=False)
    _, secret, _ = await enrol_totp(client, admin)

    async def create(headers):
        return await client.post(
            "/api/tenant/users",
            json={"email": "new@example.com", "display_name": "New", "role": "viewer"},
            headers=headers,
        )

    token = await _step_up_with_totp(client, state, admin.headers, create, secret)
    assert (await create(bearer(token))).status_code == 201

    async def update(headers):
        return await client.put(
            f"/api/tenant/users/{member.id}", json={"role": "moderator"}, headers=headers
        )

    old = stale_token(state, admin, ["pwd", "otp", "mfa"])
    refused = await update(bearer(old))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "step_up_required"
    assert (await update(bearer(token))).status_code == 200


async def test_a_non_admin_gets_403_not_a_step_up_challenge(factory, client):
    tenant = await factory.tenant()
    viewer = await factory.user(tenant)
    response = await client.post(
        "/api/tenant/users",
        json={"email": "x@example.com", "display_name": "X"},
        headers=viewer.headers,
    )
    assert response.status_code == 403


async def test_an_admin_without_factors_steps_up_with_the_password(factory, client, state):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    member = await factory.user(tenant, login=False)
    # A fresh sign-in is recent enough.
    fresh = await client.put(
        f"/api/tenant/users/{member.id}", json={"role": "streamer"}, headers=admin.headers
    )
    assert fresh.status_code == 200, fresh.text
    old = stale_token(state, admin, ["pwd"])
    refused = await client.put(
        f"/api/tenant/users/{member.id}", json={"role": "moderator"}, headers=bearer(old)
    )
    assert refused.status_code == 401
    challenge = refused.json()["error"]["challenge"]
    assert challenge["methods"] == ["password"]
    wrong = await verify(
        client, challenge["challenge_token"], method="password", password="not-the-password"
    )
    assert wrong.status_code == 401
    done = await verify(
        client, challenge["challenge_token"], method="password", password=admin.password
    )
    assert done.status_code == 200, done.text
    assert done.json()["amr"] == ["pwd"]
    again = await client.put(
        f"/api/tenant/users/{member.id}",
        json={"role": "moderator"},
        headers=bearer(done.json()["access_token"]),
    )
    assert again.status_code == 200


async def test_a_password_cannot_replace_an_enrolled_factor_in_step_up(factory, client, state):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    await enrol_totp(client, ann)
    started = await client.post("/api/auth/mfa/step-up", headers=ann.headers)
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "step_up_required"
    response = await verify(
        client, started.json()["challenge_token"], method="password", password=ann.password
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_changing_the_mfa_policy_needs_step_up(factory, client, state):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    _, secret, _ = await enrol_totp(client, admin)
    renamed = await client.put("/api/tenant/info", json={"name": "Renamed"}, headers=admin.headers)
    assert renamed.status_code == 200

    async def weaken(headers):
        return await client.put(
            "/api/tenant/info", json={"settings": {"mfa": {"mode": "off"}}}, headers=headers
        )

    token = await _step_up_with_totp(client, state, admin.headers, weaken, secret)
    assert (await weaken(bearer(token))).status_code == 200


async def test_an_admin_who_must_use_mfa_but_has_none_is_told_to_enrol(factory, client):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)  # signed in before the policy
    await client.put(
        "/api/tenant/info",
        json={"settings": {"mfa": {"mode": "required_for_roles", "roles": ["admin"]}}},
        headers=admin.headers,
    )
    response = await client.post(
        "/api/tenant/users",
        json={"email": "y@example.com", "display_name": "Y"},
        headers=admin.headers,
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "mfa_enrollment_required"


async def test_admin_resets_a_members_mfa(factory, client, state, smtp_sink):
    tenant = await factory.tenant(mfa=MfaPolicy(mode="optional"))
    admin = await factory.user(tenant, role=Role.ADMIN)
    member = await factory.user(tenant)
    await enrol_totp(client, member)
    assert (await password_login(client, member))["status"] == "mfa_required"

    reset = await client.post(f"/api/tenant/users/{member.id}/mfa/reset", headers=admin.headers)
    assert reset.status_code == 200, reset.text
    assert reset.json() == {"factors_removed": 1}
    assert (await password_login(client, member))["status"] == "ok"
    notices = await smtp_sink.wait_for(member.user.email, count=2)
    assert any("reset" in m["Subject"] for m in notices)
    assert ("auth.mfa.reset", "success") in await audit_actions(state, member.id)

    old = stale_token(state, admin, ["pwd"])
    refused = await client.post(f"/api/tenant/users/{member.id}/mfa/reset", headers=bearer(old))
    assert refused.status_code == 401


async def test_mfa_reset_is_for_admins_of_the_same_tenant(factory, client):
    tenant = await factory.tenant()
    other = await factory.tenant()
    member = await factory.user(tenant)
    moderator = await factory.user(tenant, role=Role.MODERATOR)
    foreign_admin = await factory.user(other, role=Role.ADMIN)
    url = f"/api/tenant/users/{member.id}/mfa/reset"
    assert (await client.post(url, headers=moderator.headers)).status_code == 403
    assert (await client.post(url, headers=foreign_admin.headers)).status_code == 404


async def test_changing_sso_configuration_needs_step_up(factory, client, state):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    _, secret, _ = await enrol_totp(client, admin)
    provider = {
        "name": "Corp LDAP",
        "config": {
            "protocol": "ldap",
            "url": "ldap://8.8.8.8:389",  # public: saving only checks the address
            "user_dn_template": "uid={username},dc=x",
        },
    }

    async def save(headers):
        return await client.post("/api/tenant/sso/provider", json=provider, headers=headers)

    token = await _step_up_with_totp(client, state, admin.headers, save, secret)
    saved = await save(bearer(token))
    assert saved.status_code == 200, saved.text

    async def delete(headers):
        return await client.delete(
            f"/api/tenant/sso/provider?id={saved.json()['id']}", headers=headers
        )

    old = stale_token(state, admin, ["pwd", "otp", "mfa"])
    refused = await delete(bearer(old))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "step_up_required"
    assert (await delete(bearer(token))).status_code == 204


async def test_rotating_a_stream_key_needs_step_up(factory, client, state):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    _, secret, _ = await enrol_totp(client, streamer)
    created = await client.post(
        "/api/events", json={"title": "Friday show"}, headers=streamer.headers
    )
    assert created.status_code == 201, created.text
    event_id = created.json()["id"]

    async def rotate(headers):
        return await client.post(f"/api/events/{event_id}/stream-key", headers=headers)

    token = await _step_up_with_totp(client, state, streamer.headers, rotate, secret)
    rotated = await rotate(bearer(token))
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["stream_key"]


async def test_a_non_manager_gets_404_not_a_step_up_challenge_for_stream_keys(factory, client):
    tenant = await factory.tenant()
    owner = await factory.user(tenant, role=Role.STREAMER)
    other = await factory.user(tenant, role=Role.STREAMER)
    created = await client.post(
        "/api/events", json={"title": "Private", "visibility": "private"}, headers=owner.headers
    )
    response = await client.post(
        f"/api/events/{created.json()['id']}/stream-key", headers=other.headers
    )
    assert response.status_code == 404
