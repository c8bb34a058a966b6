from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bigfootlive.authz.roles import Role
from tests.fixtures.factories import Account, Factory
from tests.fixtures.oidc_provider import OidcProvider
from tests.fixtures.saml_idp import SamlIdp
from tests.fixtures.slapd import SERVICE_DN, SERVICE_PW, SUFFIX, Slapd

CALLBACK = "http://testserver/api/auth/sso/callback"
APP_RETURN = "https://app.acme.example.com/sso/done"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # The IdPs of these tests listen on loopback, which production refuses (SSRF guard).
    # Cheap argon2: these tests sign admins in by password only to reach the SSO API.
    return {"sso_allow_private_networks": True, "argon2_time_cost": 1, "argon2_memory_kib": 1024}


@pytest.fixture(scope="session")
def oidc_idp() -> Iterator[OidcProvider]:
    provider = OidcProvider(
        clients=[
            {
                "client_id": "bfl",
                "client_secret": "bfl-secret",
                "redirect_uris": [CALLBACK],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
            },
        ],
        accounts={
            "alice": {
                "email": "alice@acme.example.com",
                "email_verified": True,
                "name": "Alice Streamer",
                "groups": ["streamers"],
            },
            "bob": {
                "email": "bob@acme.example.com",
                "email_verified": True,
                "name": "Bob Boss",
                "groups": ["bfl-admins", "streamers"],
            },
            "carol": {
                "email": "carol@acme.example.com",
                "email_verified": False,
                "name": "Carol",
                "groups": [],
            },
        },
    )
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture(scope="session")
def saml_idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SamlIdp]:
    idp = SamlIdp(tmp_path_factory.mktemp("saml-idp"))
    idp.start()
    yield idp
    idp.stop()


@dataclass
class Org:
    """A tenant with a verified email domain, an allow-listed return URL and an admin."""

    tenant: Any
    admin: Account
    slug: str


@pytest.fixture
async def acme(factory: Factory) -> Org:
    tenant = await factory.tenant(
        "acme", domains=["acme.example.com"], allowed_redirect_urls=[APP_RETURN]
    )
    admin = await factory.user(tenant, role=Role.ADMIN, email="root@acme.example.com")
    return Org(tenant=tenant, admin=admin, slug="acme")


@pytest.fixture
async def globex(factory: Factory) -> Org:
    tenant = await factory.tenant("globex", domains=["globex.example.com"])
    admin = await factory.user(tenant, role=Role.ADMIN, email="root@globex.example.com")
    return Org(tenant=tenant, admin=admin, slug="globex")


async def add_provider(client: httpx.AsyncClient, org: Org, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "Corporate IdP")
    response = await client.post("/api/tenant/sso/provider", json=body, headers=org.admin.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def oidc_body(idp: OidcProvider, **extra: Any) -> dict[str, Any]:
    return {
        "config": {
            "protocol": "oidc",
            "issuer": idp.issuer,
            "client_id": "bfl",
            "scopes": ["openid", "email", "profile", "groups"],
        },
        "secrets": {"client_secret": "bfl-secret"},
        "role_mapping": {"streamers": "streamer", "bfl-admins": "admin"},
        "default_role": "viewer",
        **extra,
    }


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    server = Slapd(tmp_path_factory.mktemp("slapd"))
    server.start()
    yield server
    server.stop()


def ldap_body(server: Slapd, **config: Any) -> dict[str, Any]:
    return {
        "config": {
            "protocol": "ldap",
            "url": server.url,
            "bind_dn": SERVICE_DN,
            "user_search_base": f"ou=people,{SUFFIX}",
            "group_search_base": f"ou=groups,{SUFFIX}",
            **config,
        },
        "secrets": {"bind_password": SERVICE_PW},
        "role_mapping": {"streamers": "streamer", "bfl-admins": "admin"},
    }
