"""Tenant admins configure providers: CRUD, secrets never returned, audit, diagnostics."""

from __future__ import annotations

import uuid

import httpx

from bigfootlive.authz.roles import Role
from bigfootlive.composition import AppState
from bigfootlive.models import SsoProvider
from tests.fixtures.oidc_provider import OidcProvider
from tests.fixtures.saml_idp import SamlIdp
from tests.fixtures.slapd import Slapd
from tests.sso.conftest import Org, add_provider, ldap_body, oidc_body


async def test_secrets_are_encrypted_at_rest_and_never_returned(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider, state: AppState
) -> None:
    created = await add_provider(client, acme, **oidc_body(oidc_idp))
    assert created["secrets_set"] == ["client_secret"]
    listed = await client.get("/api/tenant/sso/provider", headers=acme.admin.headers)
    assert "bfl-secret" not in listed.text
    assert "bfl-secret" not in str(created)
    async with state.db.transaction() as session:
        row = await session.get(SsoProvider, uuid.UUID(created["id"]))
        assert row is not None
        stored = row.secrets["client_secret"]
    assert "bfl-secret" not in stored
    assert state.secrets.decrypt(stored, context=f"sso:{created['id']}:client_secret") == (
        "bfl-secret"
    )


async def test_update_keeps_secret_unless_given(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider
) -> None:
    created = await add_provider(client, acme, **oidc_body(oidc_idp))
    body = oidc_body(oidc_idp, id=created["id"], name="Renamed")
    body.pop("secrets")
    updated = await add_provider(client, acme, **body)
    assert updated["name"] == "Renamed"
    assert updated["secrets_set"] == ["client_secret"]
    body["secrets"] = {"client_secret": ""}
    cleared = await add_provider(client, acme, **body)
    assert cleared["secrets_set"] == []


async def test_changes_are_audited(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider
) -> None:
    created = await add_provider(client, acme, **oidc_body(oidc_idp))
    deleted = await client.delete(
        "/api/tenant/sso/provider", params={"id": created["id"]}, headers=acme.admin.headers
    )
    assert deleted.status_code == 204
    audit = await client.get(
        "/api/auth/audit", params={"scope": "tenant"}, headers=acme.admin.headers
    )
    actions = [r["action"] for r in audit.json()["items"]]
    assert "sso.provider_create" in actions
    assert "sso.provider_disable" in actions
    create = next(r for r in audit.json()["items"] if r["action"] == "sso.provider_create")
    assert create["details"]["secrets_changed"] == ["client_secret"]
    assert "bfl-secret" not in audit.text


async def test_delete_disables_and_purge_removes(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider
) -> None:
    created = await add_provider(client, acme, **oidc_body(oidc_idp))
    headers = acme.admin.headers
    await client.delete("/api/tenant/sso/provider", params={"id": created["id"]}, headers=headers)
    one = await client.get(
        "/api/tenant/sso/provider", params={"id": created["id"]}, headers=headers
    )
    assert one.json()[0]["enabled"] is False
    refused = await client.post("/api/auth/sso/initiate", json={"tenant": "acme"})
    assert refused.status_code == 404
    await client.delete(
        "/api/tenant/sso/provider", params={"id": created["id"], "purge": "true"}, headers=headers
    )
    gone = await client.get(
        "/api/tenant/sso/provider", params={"id": created["id"]}, headers=headers
    )
    assert gone.status_code == 404


async def test_only_admins_manage_sso(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider, factory
) -> None:
    streamer = await factory.user(acme.tenant, role=Role.MODERATOR)
    for method, path in (
        ("GET", "/api/tenant/sso/provider"),
        ("GET", "/api/tenant/sso/templates"),
        ("POST", "/api/tenant/sso/provider"),
    ):
        response = await client.request(
            method, path, headers=streamer.headers, json=oidc_body(oidc_idp, name="x")
        )
        assert response.status_code == 403, path


async def test_other_tenants_cannot_see_or_change_a_provider(
    client: httpx.AsyncClient, acme: Org, globex: Org, oidc_idp: OidcProvider
) -> None:
    created = await add_provider(client, acme, **oidc_body(oidc_idp))
    headers = globex.admin.headers
    seen = await client.get(
        "/api/tenant/sso/provider", params={"id": created["id"]}, headers=headers
    )
    assert seen.status_code == 404
    assert (await client.get("/api/tenant/sso/provider", headers=headers)).json() == []
    changed = await client.post(
        "/api/tenant/sso/provider",
        json=oidc_body(oidc_idp, id=created["id"], name="x"),
        headers=headers,
    )
    assert changed.status_code == 404
    deleted = await client.delete(
        "/api/tenant/sso/provider", params={"id": created["id"]}, headers=headers
    )
    assert deleted.status_code == 404


async def test_domains_must_be_verified_for_the_tenant(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider
) -> None:
    response = await client.post(
        "/api/tenant/sso/provider",
        json={**oidc_body(oidc_idp, domains=["globex.example.com"]), "name": "x"},
        headers=acme.admin.headers,
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "domain_not_verified"


async def test_templates_cover_the_common_providers(client: httpx.AsyncClient, acme: Org) -> None:
    response = await client.get("/api/tenant/sso/templates", headers=acme.admin.headers)
    keys = {t["key"]: t["protocol"] for t in response.json()}
    assert keys == {
        "okta": "oidc",
        "entra_id": "oidc",
        "google_workspace": "oidc",
        "onelogin": "oidc",
        "adfs": "saml",
        "keycloak": "oidc",
        "auth0": "oidc",
        "jumpcloud": "saml",
        "github": "oauth2",
    }


async def test_connection_test_oidc_discovery_and_jwks(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider
) -> None:
    created = await add_provider(client, acme, **oidc_body(oidc_idp))
    response = await client.post(
        "/api/tenant/sso/test", json={"provider_id": created["id"]}, headers=acme.admin.headers
    )
    body = response.json()
    assert body["ok"] is True, body
    assert [c["name"] for c in body["checks"]] == ["discovery", "jwks", "algorithms"]


async def test_connection_test_reports_an_unreachable_issuer(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider
) -> None:
    body = oidc_body(oidc_idp)
    body["config"]["issuer"] = "http://127.0.0.1:9/nothing-here"
    created = await add_provider(client, acme, **body)
    response = await client.post(
        "/api/tenant/sso/test", json={"provider_id": created["id"]}, headers=acme.admin.headers
    )
    result = response.json()
    assert result["ok"] is False
    assert result["checks"][0]["name"] == "discovery"
    assert "Could not reach" in result["checks"][0]["detail"]


async def test_connection_test_saml_metadata_and_certificate(
    client: httpx.AsyncClient, acme: Org, saml_idp: SamlIdp
) -> None:
    created = await add_provider(
        client, acme, config={"protocol": "saml", "idp_metadata_url": saml_idp.metadata_url}
    )
    response = await client.post(
        "/api/tenant/sso/test", json={"provider_id": created["id"]}, headers=acme.admin.headers
    )
    result = response.json()
    assert result["ok"] is True, result
    names = [c["name"] for c in result["checks"]]
    assert names == ["metadata_fetch", "metadata", "certificate"]
    assert "valid until" in result["checks"][2]["detail"]


async def test_bad_saml_metadata_is_refused_when_saved(
    client: httpx.AsyncClient, acme: Org
) -> None:
    response = await client.post(
        "/api/tenant/sso/provider",
        json={"name": "x", "config": {"protocol": "saml", "idp_metadata_xml": "<nope/>"}},
        headers=acme.admin.headers,
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "sso_bad_metadata"


async def test_connection_test_ldap_bind_and_search(
    client: httpx.AsyncClient, acme: Org, slapd: Slapd
) -> None:
    created = await add_provider(client, acme, **ldap_body(slapd))
    response = await client.post(
        "/api/tenant/sso/test",
        json={"provider_id": created["id"], "sample_username": "alice"},
        headers=acme.admin.headers,
    )
    result = response.json()
    assert result["ok"] is True, result
    assert [c["name"] for c in result["checks"]] == ["connect", "service_bind", "search"]
    assert result["checks"][2]["detail"].startswith("1 entr")


async def test_connection_test_ldap_wrong_service_password(
    client: httpx.AsyncClient, acme: Org, slapd: Slapd
) -> None:
    body = ldap_body(slapd)
    body["secrets"] = {"bind_password": "wrong"}
    created = await add_provider(client, acme, **body)
    response = await client.post(
        "/api/tenant/sso/test", json={"provider_id": created["id"]}, headers=acme.admin.headers
    )
    result = response.json()
    assert result["ok"] is False
    assert result["checks"][-1] == {
        "name": "service_bind",
        "ok": False,
        "detail": "The service account could not bind to the directory",
    }


async def test_private_network_urls_are_refused_by_default(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider, state: AppState
) -> None:
    created = await add_provider(client, acme, **oidc_body(oidc_idp))
    state.settings.sso_allow_private_networks = False  # saved earlier, refused when used
    response = await client.post("/api/auth/sso/initiate", json={"tenant": "acme"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "sso_bad_url"
    test = await client.post(
        "/api/tenant/sso/test", json={"provider_id": created["id"]}, headers=acme.admin.headers
    )
    assert test.json()["ok"] is False


async def test_a_templates_placeholders_are_refused_by_name_and_nothing_is_saved(
    client: httpx.AsyncClient, acme: Org
) -> None:
    listed = await client.get("/api/tenant/sso/templates", headers=acme.admin.headers)
    templates = {t["key"]: t for t in listed.json()}
    for key, expected in {
        "okta": {"config.issuer": "<your-okta-domain>", "config.client_id": "<client id>"},
        "auth0": {
            "config.issuer": "<tenant>",
            "config.client_id": "<client id>",
            "attribute_mapping.groups": "<your namespace>",
        },
    }.items():
        template = templates[key]
        body = {
            "name": template["name"],
            "config": template["config"],
            "attribute_mapping": template["attribute_mapping"],
            "secrets": {"client_secret": "s3cret"},
        }
        response = await client.post(
            "/api/tenant/sso/provider", json=body, headers=acme.admin.headers
        )
        assert response.status_code == 422, response.text  # was 200, or "Cannot resolve <...>"
        error = response.json()["error"]
        assert error["code"] == "sso_placeholders_left"
        assert error["fields"] == expected
        assert "client id (<client id>)" in error["message"]
    saved = await client.get("/api/tenant/sso/provider", headers=acme.admin.headers)
    assert saved.json() == []
