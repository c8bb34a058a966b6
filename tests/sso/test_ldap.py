"""LDAP sign-in against a real OpenLDAP slapd on loopback."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fixtures.slapd import SUFFIX, Slapd
from tests.sso.conftest import Org, add_provider, ldap_body


async def _login(
    client: httpx.AsyncClient, username: str, password: str, **extra: Any
) -> httpx.Response:
    body = {"tenant": "acme", "username": username, "password": password, **extra}
    return await client.post("/api/auth/sso/ldap", json=body)


async def test_search_then_bind_login_provisions_user_with_group_role(
    client: httpx.AsyncClient, acme: Org, slapd: Slapd
) -> None:
    await add_provider(client, acme, **ldap_body(slapd))
    response = await _login(client, "bob", "bobpw")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"  # it carries tokens
    user = response.json()["user"]
    assert (user["email"], user["role"], user["display_name"]) == (
        "bob@acme.example.com",
        "admin",
        "Bob Boss",
    )
    sessions = await client.get(
        "/api/auth/sessions", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
    )
    assert sessions.json()[0]["amr"] == ["ldap"]


async def test_direct_bind_login(client: httpx.AsyncClient, acme: Org, slapd: Slapd) -> None:
    body = ldap_body(
        slapd,
        bind_dn=None,
        user_search_base=None,
        user_dn_template=f"uid={{username}},ou=people,{SUFFIX}",
    )
    body.pop("secrets")
    await add_provider(client, acme, **body)
    response = await _login(client, "alice", "alicepw")
    assert response.status_code == 200, response.text
    assert response.json()["user"]["role"] == "streamer"


async def test_wrong_password_is_refused(
    client: httpx.AsyncClient, acme: Org, slapd: Slapd
) -> None:
    await add_provider(client, acme, **ldap_body(slapd))
    response = await _login(client, "alice", "wrong")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"


async def test_empty_password_is_not_an_anonymous_bind(
    client: httpx.AsyncClient, acme: Org, slapd: Slapd
) -> None:
    await add_provider(client, acme, **ldap_body(slapd))
    response = await _login(client, "alice", "")
    assert response.status_code == 401


@pytest.mark.parametrize("username", ["ali*", "*", "alice)(uid=*", "*)(|(uid=*"])
async def test_filter_injection_in_username_matches_nobody(
    client: httpx.AsyncClient, acme: Org, slapd: Slapd, username: str
) -> None:
    """Unescaped, `ali*` would find alice alone and her password would then sign in."""
    await add_provider(client, acme, **ldap_body(slapd))
    response = await _login(client, username, "alicepw")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"


async def test_ldap_provider_of_another_tenant_is_not_used(
    client: httpx.AsyncClient, acme: Org, globex: Org, slapd: Slapd
) -> None:
    provider = await add_provider(client, acme, **ldap_body(slapd))
    response = await client.post(
        "/api/auth/sso/ldap",
        json={
            "tenant": "globex",
            "provider_id": provider["id"],
            "username": "alice",
            "password": "alicepw",
        },
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "sso_provider_not_found"


async def test_wrong_service_password_is_a_configuration_error(
    client: httpx.AsyncClient, acme: Org, slapd: Slapd
) -> None:
    body = ldap_body(slapd)
    body["secrets"] = {"bind_password": "not-it"}
    await add_provider(client, acme, **body)
    response = await _login(client, "alice", "alicepw")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "sso_ldap_bind_failed"


async def test_starttls_with_the_directory_ca(
    client: httpx.AsyncClient, acme: Org, slapd: Slapd
) -> None:
    await add_provider(client, acme, **ldap_body(slapd, start_tls=True, ca_cert_pem=slapd.ca_pem))
    response = await _login(client, "alice", "alicepw")
    assert response.status_code == 200, response.text


async def test_ldaps_with_the_directory_ca(
    client: httpx.AsyncClient, acme: Org, slapd: Slapd
) -> None:
    await add_provider(
        client, acme, **ldap_body(slapd, url=slapd.ldaps_url, ca_cert_pem=slapd.ca_pem)
    )
    response = await _login(client, "alice", "alicepw")
    assert response.status_code == 200, response.text


async def test_tls_to_an_untrusted_server_is_refused(
    client: httpx.AsyncClient, acme: Org, slapd: Slapd
) -> None:
    await add_provider(client, acme, **ldap_body(slapd, url=slapd.ldaps_url))
    response = await _login(client, "alice", "alicepw")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "sso_unreachable"


async def test_directory_on_an_internal_address_is_refused_by_default(
    client: httpx.AsyncClient, acme: Org, slapd: Slapd, state: Any
) -> None:
    created = await add_provider(client, acme, **ldap_body(slapd))
    state.settings.sso_allow_private_networks = False
    response = await _login(client, "alice", "alicepw")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "sso_bad_url"
    assert "access_token" not in response.text
    test = await client.post(
        "/api/tenant/sso/test", json={"provider_id": created["id"]}, headers=acme.admin.headers
    )
    result = test.json()
    assert result["ok"] is False
    assert [c["name"] for c in result["checks"]] == ["error"]
    assert "non-public" in result["checks"][0]["detail"]
