"""OIDC sign-in against a real node-oidc-provider on loopback."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from tests.fixtures.oidc_provider import OidcProvider, browser_login
from tests.sso.conftest import APP_RETURN, CALLBACK, Org, add_provider, oidc_body


async def _initiate(client: httpx.AsyncClient, **body: object) -> dict[str, object]:
    response = await client.post("/api/auth/sso/initiate", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _sign_in(client: httpx.AsyncClient, login: str, **initiate: object) -> httpx.Response:
    started = await _initiate(client, **initiate)
    back = await browser_login(str(started["redirect_url"]), login, CALLBACK)
    return await client.get(back.replace("http://testserver", ""))


async def test_oidc_login_provisions_user_with_mapped_role(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider
) -> None:
    await add_provider(client, acme, **oidc_body(oidc_idp))
    response = await _sign_in(client, "alice", tenant="acme")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"  # it carries tokens
    body = response.json()
    assert body["user"]["email"] == "alice@acme.example.com"
    assert body["user"]["role"] == "streamer"
    assert body["user"]["tenant_slug"] == "acme"
    me = await client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    sessions = await client.get(
        "/api/auth/sessions", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert sessions.json()[0]["amr"] == ["ext", "oidc"]


async def test_home_realm_discovery_by_email_domain(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider
) -> None:
    await add_provider(client, acme, **oidc_body(oidc_idp, domains=["acme.example.com"]))
    response = await _sign_in(client, "bob", email="bob@acme.example.com")
    assert response.status_code == 200, response.text
    assert response.json()["user"]["role"] == "admin"


async def test_group_mapping_is_reapplied_at_each_login(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider
) -> None:
    provider = await add_provider(client, acme, **oidc_body(oidc_idp))
    first = await _sign_in(client, "alice", tenant="acme")
    assert first.json()["user"]["role"] == "streamer"
    body = oidc_body(oidc_idp, id=provider["id"])
    body["role_mapping"] = {"streamers": "moderator"}
    body.pop("secrets")
    await add_provider(client, acme, **body)
    second = await _sign_in(client, "alice", tenant="acme")
    assert second.status_code == 200, second.text
    assert second.json()["user"]["role"] == "moderator"
    assert second.json()["user"]["id"] == first.json()["user"]["id"]


async def test_jit_off_refuses_unknown_users(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider
) -> None:
    await add_provider(client, acme, **oidc_body(oidc_idp, jit_provisioning=False))
    response = await _sign_in(client, "alice", tenant="acme")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "sso_no_account"


async def test_unverified_email_does_not_take_over_existing_account(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider, factory
) -> None:
    await factory.user(acme.tenant, email="carol@acme.example.com", login=False)
    await add_provider(client, acme, **oidc_body(oidc_idp))
    response = await _sign_in(client, "carol", tenant="acme")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "sso_email_unverified"


async def test_other_tenants_provider_cannot_sign_into_this_tenant(
    client: httpx.AsyncClient, acme: Org, globex: Org, oidc_idp: OidcProvider, factory
) -> None:
    acme_provider = await add_provider(client, acme, **oidc_body(oidc_idp))
    await factory.user(globex.tenant, email="alice@acme.example.com", login=False)
    # Globex has no provider: naming acme's provider id under globex finds nothing.
    response = await client.post(
        "/api/auth/sso/initiate", json={"tenant": "globex", "provider_id": acme_provider["id"]}
    )
    assert response.status_code == 404
    # Signing in through acme's provider lands in acme, never in globex's same-email account.
    signed_in = await _sign_in(client, "alice", tenant="acme")
    assert signed_in.json()["user"]["tenant_slug"] == "acme"
    assert signed_in.json()["user"]["tenant_id"] == str(acme.tenant.id)


async def test_callback_with_wrong_state_is_refused(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider
) -> None:
    await add_provider(client, acme, **oidc_body(oidc_idp))
    started = await _initiate(client, tenant="acme")
    back = await browser_login(str(started["redirect_url"]), "alice", CALLBACK)
    code = parse_qs(urlsplit(back).query)["code"][0]
    wrong = await client.get("/api/auth/sso/callback", params={"code": code, "state": "forged"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "sso_bad_state"
    missing = await client.get("/api/auth/sso/callback", params={"code": code})
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "sso_bad_state"


async def test_state_is_single_use(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider
) -> None:
    await add_provider(client, acme, **oidc_body(oidc_idp))
    started = await _initiate(client, tenant="acme")
    back = await browser_login(str(started["redirect_url"]), "alice", CALLBACK)
    first = await client.get(back.replace("http://testserver", ""))
    assert first.status_code == 200
    again = await client.get(back.replace("http://testserver", ""))
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "sso_bad_state"


async def test_id_token_with_another_nonce_is_refused(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider
) -> None:
    await add_provider(client, acme, **oidc_body(oidc_idp))
    started = await _initiate(client, tenant="acme")
    # An attacker injects an authorization response minted for a different nonce.
    url = str(started["redirect_url"])
    query = parse_qs(urlsplit(url).query)
    tampered = url.replace(f"nonce={query['nonce'][0]}", "nonce=attacker-nonce")
    back = await browser_login(tampered, "alice", CALLBACK)
    response = await client.get(back.replace("http://testserver", ""))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "sso_bad_nonce"


async def test_callback_by_form_post_and_redirect_handoff(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider
) -> None:
    await add_provider(client, acme, **oidc_body(oidc_idp))
    started = await _initiate(client, tenant="acme", redirect_uri=APP_RETURN)
    back = await browser_login(str(started["redirect_url"]), "alice", CALLBACK)
    params = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
    response = await client.post("/api/auth/sso/callback", data=params)
    assert response.status_code == 303
    assert response.headers["cache-control"] == "no-store"  # the code is a credential too
    location = response.headers["location"]
    assert location.startswith(APP_RETURN + "?sso_code=")
    code = parse_qs(urlsplit(location).query)["sso_code"][0]
    tokens = await client.post("/api/auth/sso/exchange", json={"code": code})
    assert tokens.status_code == 200
    assert tokens.headers["cache-control"] == "no-store"
    assert tokens.json()["user"]["email"] == "alice@acme.example.com"
    reused = await client.post("/api/auth/sso/exchange", json={"code": code})
    assert reused.status_code == 401


async def test_redirect_uri_outside_the_allow_list_is_refused(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider
) -> None:
    await add_provider(client, acme, **oidc_body(oidc_idp))
    for evil in (
        "https://evil.example.net/steal",
        APP_RETURN + ".evil.example.net",
        "//evil.example.net",
    ):
        response = await client.post(
            "/api/auth/sso/initiate", json={"tenant": "acme", "redirect_uri": evil}
        )
        assert response.status_code == 400, evil
        assert response.json()["error"]["code"] == "invalid_redirect_uri"


async def test_plain_oauth2_provider_maps_userinfo(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider
) -> None:
    await add_provider(
        client,
        acme,
        config={
            "protocol": "oauth2",
            "authorize_url": f"{oidc_idp.issuer}/auth",
            "token_url": f"{oidc_idp.issuer}/token",
            "userinfo_url": f"{oidc_idp.issuer}/me",
            "client_id": "bfl",
            "scopes": ["openid", "email", "profile", "groups"],
            "token_endpoint_auth_method": "client_secret_basic",
        },
        secrets={"client_secret": "bfl-secret"},
        attribute_mapping={"subject": ["sub"]},
        role_mapping={"streamers": "streamer"},
    )
    response = await _sign_in(client, "alice", tenant="acme")
    assert response.status_code == 200, response.text
    assert response.json()["user"]["role"] == "streamer"
    sessions = await client.get(
        "/api/auth/sessions",
        headers={"Authorization": f"Bearer {response.json()['access_token']}"},
    )
    assert sessions.json()[0]["amr"] == ["ext", "oauth2"]


async def test_idp_error_on_callback_is_refused_and_audited(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider
) -> None:
    await add_provider(client, acme, **oidc_body(oidc_idp))
    started = await _initiate(client, tenant="acme")
    response = await client.post(
        "/api/auth/sso/callback", json={"state": started["state"], "error": "access_denied"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "sso_idp_error"
    audit = await client.get(
        "/api/auth/audit",
        params={"scope": "tenant", "action": "auth.sso_login"},
        headers=acme.admin.headers,
    )
    assert audit.json()["items"][0]["details"]["reason"] == "sso_idp_error"
