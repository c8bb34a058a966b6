"""Identity-provider URLs that point inside our network are refused when a provider is saved
(422 naming the field), not only when they are used; SSO_ALLOW_PRIVATE_NETWORKS lifts that."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import httpx
import pytest

from bigfootlive.composition import AppState
from bigfootlive.kit.outbound import is_public
from tests.fixtures.oidc_provider import OidcProvider
from tests.sso.conftest import Org, add_provider, oidc_body

PUBLIC = "https://8.8.8.8"  # an address literal: public, and nothing has to resolve it


def _loopback_name() -> str:
    """A host name (not "localhost") that this machine resolves to loopback."""
    name = socket.gethostname()
    try:
        infos = socket.getaddrinfo(name, 443, type=socket.SOCK_STREAM)
    except OSError:
        pytest.skip(f"{name} does not resolve")
    addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    if not addresses or any(is_public(a) or not a.is_loopback for a in addresses):
        pytest.skip(f"{name} does not resolve to loopback only")
    return name


INTERNAL_HOSTS = ["127.0.0.1", "localhost", "169.254.169.254", "10.0.0.1", "[::1]"]


def _config(field: str, host: str) -> dict[str, Any]:
    https = f"https://{host}/sso"
    if field == "issuer":
        return {"protocol": "oidc", "issuer": https, "client_id": "bfl"}
    if field in ("authorize_url", "token_url", "userinfo_url"):
        config = {
            "protocol": "oauth2",
            "authorize_url": f"{PUBLIC}/authorize",
            "token_url": f"{PUBLIC}/token",
            "userinfo_url": f"{PUBLIC}/userinfo",
            "client_id": "bfl",
        }
        return {**config, field: https}
    if field == "idp_metadata_url":
        return {"protocol": "saml", "idp_metadata_url": https}
    return {
        "protocol": "ldap",
        "url": f"ldap://{host}:389",
        "user_dn_template": "uid={username},ou=people,dc=example,dc=org",
    }


@pytest.fixture
def guarded(state: AppState) -> None:
    """The production default: private networks not allowed."""
    state.settings.sso_allow_private_networks = False


@pytest.mark.parametrize(
    "field",
    ["issuer", "authorize_url", "token_url", "userinfo_url", "idp_metadata_url", "url"],
)
async def test_internal_urls_are_refused_when_saved_and_nothing_is_saved(
    client: httpx.AsyncClient, acme: Org, guarded: None, field: str
) -> None:
    for host in [*INTERNAL_HOSTS, _loopback_name()]:
        response = await client.post(
            "/api/tenant/sso/provider",
            json={"name": "Corp", "config": _config(field, host)},
            headers=acme.admin.headers,
        )
        assert response.status_code == 422, (host, response.text)
        error = response.json()["error"]
        assert error["code"] == "sso_bad_url", (host, error)
        assert error["field"] == f"config.{field}"

    listed = await client.get("/api/tenant/sso/provider", headers=acme.admin.headers)
    assert listed.json() == []


async def test_an_update_to_an_internal_url_is_refused_and_the_provider_is_unchanged(
    client: httpx.AsyncClient, acme: Org, state: AppState
) -> None:
    saved = await add_provider(client, acme, config=_config("token_url", "8.8.4.4"))
    state.settings.sso_allow_private_networks = False

    response = await client.post(
        "/api/tenant/sso/provider",
        json={"id": saved["id"], "name": "Corp", "config": _config("token_url", "169.254.169.254")},
        headers=acme.admin.headers,
    )

    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "config.token_url"
    [stored] = (await client.get("/api/tenant/sso/provider", headers=acme.admin.headers)).json()
    assert stored["config"]["token_url"] == "https://8.8.4.4/sso"


async def test_public_addresses_are_saved_with_the_guard_on(
    client: httpx.AsyncClient, acme: Org, guarded: None
) -> None:
    for field in ("issuer", "authorize_url", "url"):
        await add_provider(client, acme, config=_config(field, "8.8.8.8"))


async def test_private_networks_setting_allows_loopback_identity_providers(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider, state: AppState
) -> None:
    assert state.settings.sso_allow_private_networks is True  # tests/sso/conftest.py
    created = await add_provider(client, acme, **oidc_body(oidc_idp))
    assert created["config"]["issuer"].startswith("http://127.0.0.1:")
