"""'SSO required': password sign-in is closed except for break-glass admins."""

from __future__ import annotations

import httpx

from bigfootlive.authz.roles import Role
from tests.fixtures.factories import PASSWORD
from tests.fixtures.oidc_provider import OidcProvider
from tests.sso.conftest import Org, add_provider, oidc_body


async def _password_login(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post(
        "/api/auth/login", json={"tenant": "acme", "email": email, "password": PASSWORD}
    )


async def test_sso_required_blocks_password_login_for_members(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider, factory
) -> None:
    member = await factory.user(acme.tenant, role=Role.STREAMER, login=False)
    assert (await _password_login(client, member.user.email)).status_code == 200
    await add_provider(client, acme, **oidc_body(oidc_idp, sso_required=True))
    response = await _password_login(client, member.user.email)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "sso_required"
    audit = await client.get(
        "/api/auth/audit",
        params={"scope": "tenant", "action": "auth.login"},
        headers=acme.admin.headers,
    )
    refusal = audit.json()["items"][0]
    assert (refusal["result"], refusal["details"]) == ("failure", {"reason": "sso_required"})


async def test_admins_are_break_glass_when_none_are_listed(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider
) -> None:
    await add_provider(client, acme, **oidc_body(oidc_idp, sso_required=True))
    assert (await _password_login(client, "root@acme.example.com")).status_code == 200


async def test_only_listed_break_glass_admins_keep_password_login(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider, factory
) -> None:
    other_admin = await factory.user(acme.tenant, role=Role.ADMIN, login=False)
    await add_provider(
        client,
        acme,
        **oidc_body(oidc_idp, sso_required=True, break_glass_emails=["root@acme.example.com"]),
    )
    assert (await _password_login(client, "root@acme.example.com")).status_code == 200
    refused = await _password_login(client, other_admin.user.email)
    assert refused.status_code == 403


async def test_disabled_provider_does_not_require_sso(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider, factory
) -> None:
    member = await factory.user(acme.tenant, login=False)
    await add_provider(client, acme, **oidc_body(oidc_idp, sso_required=True, enabled=False))
    assert (await _password_login(client, member.user.email)).status_code == 200


async def test_other_tenants_are_not_affected(
    client: httpx.AsyncClient, acme: Org, globex: Org, oidc_idp: OidcProvider, factory
) -> None:
    await add_provider(client, acme, **oidc_body(oidc_idp, sso_required=True))
    member = await factory.user(globex.tenant, login=False)
    response = await client.post(
        "/api/auth/login",
        json={"tenant": "globex", "email": member.user.email, "password": PASSWORD},
    )
    assert response.status_code == 200
