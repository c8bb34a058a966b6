"""The admin console's SSO pages in process, on both backends, against the real OIDC provider
of the SSO tests (node oidc-provider on loopback): a provider created from a template, its
secret never shown back, the connection test's real checks, the metadata refresh status, "SSO
required" with break-glass, a member signing in through it, and another tenant's ids."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from bigfootlive.authz.roles import Role
from tests.fixtures.factories import Factory
from tests.fixtures.oidc_provider import OidcProvider, browser_login
from tests.sso.conftest import CALLBACK
from tests.sso.conftest import oidc_idp as oidc_idp  # the SSO tests' provider (a fixture)
from tests.web.test_pages import HTML, _csrf, _signin

PROVIDER_LINK = re.compile(r'href="/admin/sso/([0-9a-f-]{36})"')


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"sso_allow_private_networks": True}  # the IdP listens on loopback


def _form_fields(page: httpx.Response) -> dict[str, str]:
    """The provider form's values as the browser would post them (checked boxes only)."""
    form = page.text[page.text.index('id="provider-form"') :]
    fields: dict[str, str] = {}
    for tag in re.findall(r"<input[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if not name or ('type="checkbox"' in tag and " checked" not in tag):
            continue
        fields[name.group(1)] = value.group(1) if value else ""
    for name, value in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>([^<]*)</textarea>', form):
        fields[name] = value
    for name, options in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'value="([^"]+)" selected', options)
        fields[name] = chosen.group(1) if chosen else ""
    return {
        k: v.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
        for k, v in fields.items()
    }


async def test_oidc_provider_from_a_template(
    client: httpx.AsyncClient, factory: Factory, oidc_idp: OidcProvider
):
    tenant = await factory.tenant("acme", domains=["acme.example.com"])
    admin = await factory.user(tenant, role=Role.ADMIN, email="root@acme.example.com", login=False)
    await _signin(client, tenant.slug, admin.user.email)
    listing = await client.get("/admin/sso", headers=HTML)
    assert listing.status_code == 200
    assert 'href="/admin/sso/new?template=keycloak"' in listing.text
    assert "acme.example.com — verified" in listing.text
    form = await client.get("/admin/sso/new", params={"template": "keycloak"}, headers=HTML)
    assert form.status_code == 200
    fields = _form_fields(form)
    assert fields["config.issuer"] == "https://<keycloak host>/realms/<realm>"
    assert fields["mapping.groups"] == "groups"
    # sent as the template filled it: the placeholders are named, nothing is created
    untouched = await client.post("/admin/sso", data={**fields, "name": "Keycloak"}, headers=HTML)
    assert untouched.status_code == 422
    assert (  # was "Cannot resolve <keycloak host>"
        "Replace the template&#39;s placeholders in angle brackets: issuer (&lt;keycloak host&gt;)"
        in untouched.text
    )
    assert "client id (&lt;client id&gt;)" in untouched.text
    fields.update({
        "config.issuer": oidc_idp.issuer, "config.client_id": "bfl",
        "config.scopes": "openid email profile groups", "secret.client_secret": "bfl-secret",
        "role_mapping": "streamers = streamer\nbfl-admins = admin", "domains": "acme.example.com",
        "name": "Corporate IdP",
    })  # fmt: skip
    created = await client.post("/admin/sso", data=fields, headers=HTML)
    assert created.status_code == 303, created.text
    path = created.headers["location"].split("?")[0]
    page = await client.get(path, headers=HTML)
    assert "client_secret (never shown)" in page.text
    assert "bfl-secret" not in page.text
    assert CALLBACK in page.text  # the redirect URI to register at the IdP

    tested = await client.post(f"{path}/test", data={"csrf_token": _csrf(page)}, headers=HTML)
    assert tested.status_code == 200
    assert 'id="test-outcome">passed<' in tested.text, tested.text
    assert "failed" not in tested.text.split("<tbody>")[1]
    refreshed = await client.post(f"{path}/refresh", data={"csrf_token": _csrf(page)}, headers=HTML)
    assert refreshed.status_code == 303
    page = await client.get(path, headers=HTML)
    assert re.search(r'id="refresh-status">ok, checked', page.text), page.text

    # Saved again without a secret: the stored one stays; SSO required with a break-glass admin.
    again = _form_fields(page)
    assert again["secret.client_secret"] == ""
    again.update({"sso_required": "true", "break_glass_emails": "root@acme.example.com"})
    saved = await client.post(path, data=again, headers=HTML)
    assert saved.status_code == 303, saved.text
    page = await client.get(path, headers=HTML)
    assert "client_secret (never shown)" in page.text
    member = await factory.user(tenant, email="dana@acme.example.com", login=False)
    refused = await client.post(
        "/api/auth/login",
        json={"tenant": "acme", "email": member.user.email, "password": member.password},
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "sso_required"
    await factory.login(admin)  # the break-glass admin still signs in with a password

    # A member signs in through it (the API's SSO start and callback).
    started = await client.post("/api/auth/sso/initiate", json={"tenant": "acme"})
    assert started.status_code == 200, started.text
    back = await browser_login(started.json()["redirect_url"], "alice", CALLBACK)
    query = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
    signed = await client.get("/api/auth/sso/callback", params=query)
    assert signed.status_code == 200, signed.text
    assert signed.json()["user"]["email"] == "alice@acme.example.com"
    assert signed.json()["user"]["role"] == "streamer"

    bad = {**again, "config.issuer": "not-a-url"}
    invalid = await client.post(path, data=bad, headers=HTML)
    assert invalid.status_code == 422
    assert "config.issuer" in invalid.text
    assert "Check the form: issuer: " in invalid.text  # the field, as the form names it
    assert "bfl-secret" not in invalid.text


async def test_other_tenants_providers_are_not_found(
    client: httpx.AsyncClient, factory: Factory, oidc_idp: OidcProvider
):
    victim = await factory.tenant("victim", domains=["victim.example.com"])
    victim_admin = await factory.user(victim, role=Role.ADMIN)
    created = await client.post(
        "/api/tenant/sso/provider",
        json={"name": "V", "config": {"protocol": "oidc", "issuer": oidc_idp.issuer,
              "client_id": "bfl"}, "secrets": {"client_secret": "bfl-secret"}},
        headers=victim_admin.headers,
    )  # fmt: skip
    assert created.status_code == 200, created.text
    victim_id = created.json()["id"]
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN, login=False)
    await _signin(client, tenant.slug, admin.user.email)
    listing = await client.get("/admin/sso", headers=HTML)
    assert PROVIDER_LINK.findall(listing.text) == []
    token = _csrf(listing)
    base = f"/admin/sso/{victim_id}"
    assert (await client.get(base, headers=HTML)).status_code == 404
    for action, data in (
        ("", {"protocol": "oidc", "name": "mine"}),
        ("/test", {}),
        ("/refresh", {}),
        ("/delete", {}),
        ("/delete", {"confirm": "yes", "purge": "true"}),
    ):
        response = await client.post(
            base + action, data={"csrf_token": token, **data}, headers=HTML
        )
        assert response.status_code == 404, (action, response.status_code)
    still = await client.get(
        "/api/tenant/sso/provider", params={"id": victim_id}, headers=victim_admin.headers
    )
    assert still.json()[0]["name"] == "V"
    assert still.json()[0]["enabled"] is True


def test_form_problems_are_worded_for_the_admin() -> None:
    from pydantic import BaseModel, Field, ValidationError, model_validator

    from bigfootlive.web.admin.common import form_problems

    class Ldap(BaseModel):
        url: str = Field(pattern="^ldaps?://")

    class Saml(BaseModel):
        idp_metadata_url: str | None = None

        @model_validator(mode="after")
        def _one(self) -> Saml:
            raise ValueError("give idp_metadata_url or idp_metadata_xml")

    class Config(BaseModel):
        ldap: Ldap | None = None
        saml: Saml | None = None

    try:
        Config.model_validate({"ldap": {"url": "dir.example.com"}, "saml": {}})
    except ValidationError as exc:
        worded = form_problems(exc)
    assert worded == (
        "url: must start with ldap:// or ldaps://; saml: give idp_metadata_url or idp_metadata_xml"
    )
