"""Every answer that carries a token, a secret or a key says `Cache-Control: no-store`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bigfootlive.authz.roles import Role
from tests.mfa.helpers import mfa_login, totp_code, verify


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"webhook_allow_private_networks": True}


def assert_not_stored(response: httpx.Response, what: str) -> None:
    assert response.is_success, (what, response.status_code, response.text)
    assert response.headers.get("cache-control") == "no-store", what
    assert response.headers.get("pragma") == "no-cache", what


async def test_every_answer_carrying_a_credential_is_not_stored(factory, client):
    # The SSO sign-in answers (callback, SAML ACS, LDAP, exchange) are checked in tests/sso.
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN, login=False)
    answers: dict[str, httpx.Response] = {}

    login = await client.post(
        "/api/auth/login",
        json={"tenant": tenant.slug, "email": admin.user.email, "password": admin.password},
    )
    answers["POST /api/auth/login (tokens)"] = login
    admin.access_token = login.json()["access_token"]
    answers["POST /api/auth/refresh"] = await client.post(
        "/api/auth/refresh", json={"refresh_token": login.json()["refresh_token"]}
    )

    setup = await client.post(
        "/api/auth/mfa/setup", json={"type": "totp", "name": "Phone"}, headers=admin.headers
    )
    answers["POST /api/auth/mfa/setup (TOTP secret)"] = setup
    answers["POST /api/auth/mfa/setup/confirm (backup codes)"] = await client.post(
        "/api/auth/mfa/setup/confirm",
        json={
            "factor_id": setup.json()["factor"]["id"],
            "code": totp_code(setup.json()["totp"]["secret"]),
        },
        headers=admin.headers,
    )
    secret = setup.json()["totp"]["secret"]
    challenge = await client.post(
        "/api/auth/mfa/step-up", headers=admin.headers
    )  # before the sign-in below uses up the next TOTP steps
    answers["POST /api/auth/mfa/step-up (challenge token)"] = challenge
    await mfa_login(client, admin, secret)  # POST /api/auth/mfa/verify, checked below
    codes = await client.post("/api/auth/mfa/backup-codes", headers=admin.headers)
    answers["POST /api/auth/mfa/backup-codes"] = codes
    answers["POST /api/auth/mfa/verify (step-up token)"] = await verify(
        client,
        challenge.json()["challenge_token"],
        method="backup_code",
        code=codes.json()["backup_codes"][0],
    )
    mfa_challenge = await client.post(
        "/api/auth/login",
        json={"tenant": tenant.slug, "email": admin.user.email, "password": admin.password},
    )
    assert mfa_challenge.json()["status"] == "mfa_required"
    answers["POST /api/auth/login (MFA challenge)"] = mfa_challenge
    answers["POST /api/auth/mfa/verify (tokens)"] = await verify(
        client,
        mfa_challenge.json()["challenge_token"],
        method="backup_code",
        code=codes.json()["backup_codes"][1],
    )

    answers["POST /api/api-keys"] = await client.post(
        "/api/api-keys", json={"name": "ci"}, headers=admin.headers
    )
    hook = await client.post(
        "/api/webhooks/endpoints",
        json={"url": "http://127.0.0.1:9/hook", "event_types": ["event.live"]},
        headers=admin.headers,
    )
    answers["POST /api/webhooks/endpoints"] = hook
    answers["POST /api/webhooks/endpoints/{id}/rotate-secret"] = await client.post(
        f"/api/webhooks/endpoints/{hook.json()['id']}/rotate-secret", headers=admin.headers
    )
    event = await client.post(
        "/api/events", json={"title": "Show", "visibility": "private"}, headers=admin.headers
    )
    answers["POST /api/events (stream key)"] = event
    answers["POST /api/events/{id}/stream-key"] = await client.post(
        f"/api/events/{event.json()['id']}/stream-key", headers=admin.headers
    )
    answers["GET /api/streaming/events/{id}/stream (key, playback token)"] = await client.get(
        f"/api/streaming/events/{event.json()['id']}/stream", headers=admin.headers
    )

    for what, response in answers.items():
        assert_not_stored(response, what)
    # Answers without credentials stay cacheable by the client's own rules.
    me = await client.get("/api/auth/me", headers=admin.headers)
    assert "cache-control" not in me.headers
    assert "pragma" not in me.headers
