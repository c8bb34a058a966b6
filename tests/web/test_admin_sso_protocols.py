"""The SSO provider form for the other protocols, in process on both backends: every template
and blank form renders; an LDAP provider (real slapd) and a SAML provider (real IdP metadata)
made through the form pass their connection tests, and a failing test shows its failed check."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from bigfootlive.authz.roles import Role
from bigfootlive.sso.templates import TEMPLATES
from tests.fixtures.factories import Factory
from tests.fixtures.saml_idp import SamlIdp
from tests.fixtures.slapd import SERVICE_DN, SERVICE_PW, SUFFIX, Slapd
from tests.sso.conftest import saml_idp as saml_idp  # the SSO tests' IdPs (fixtures)
from tests.sso.conftest import slapd as slapd
from tests.web.test_admin_sso import _form_fields
from tests.web.test_pages import HTML, _csrf, _signin


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"sso_allow_private_networks": True}  # the IdPs listen on loopback


async def _admin(client: httpx.AsyncClient, factory: Factory) -> None:
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN, login=False)
    await _signin(client, tenant.slug, admin.user.email)


async def _create(client: httpx.AsyncClient, query: dict[str, str], **values: str) -> str:
    form = await client.get("/admin/sso/new", params=query, headers=HTML)
    assert form.status_code == 200
    fields = {**_form_fields(form), **values}
    created = await client.post("/admin/sso", data=fields, headers=HTML)
    assert created.status_code == 303, created.text
    return str(created.headers["location"].split("?")[0])


async def test_every_template_and_blank_form_renders(client: httpx.AsyncClient, factory: Factory):
    await _admin(client, factory)
    for template in TEMPLATES:
        form = await client.get("/admin/sso/new", params={"template": template.key}, headers=HTML)
        assert form.status_code == 200, template.key
        assert f'name="protocol" value="{template.protocol}"' in form.text
    for protocol in ("oidc", "oauth2", "saml", "ldap"):
        form = await client.get("/admin/sso/new", params={"protocol": protocol}, headers=HTML)
        assert form.status_code == 200, protocol
    missing = await client.get("/admin/sso/new", params={"template": "nope"}, headers=HTML)
    assert missing.status_code == 404


async def test_ldap_provider_through_the_form(
    client: httpx.AsyncClient, factory: Factory, slapd: Slapd
):
    await _admin(client, factory)
    path = await _create(
        client, {"protocol": "ldap"}, name="Directory", **{
            "config.url": slapd.url, "config.bind_dn": SERVICE_DN,
            "config.user_search_base": f"ou=people,{SUFFIX}",
            "config.group_search_base": f"ou=groups,{SUFFIX}",
            "secret.bind_password": SERVICE_PW, "role_mapping": "streamers = streamer",
        },
    )  # fmt: skip
    page = await client.get(path, headers=HTML)
    assert "bind_password (never shown)" in page.text
    assert SERVICE_PW not in page.text
    tested = await client.post(
        f"{path}/test", data={"csrf_token": _csrf(page), "sample_username": "alice"}, headers=HTML
    )
    assert 'id="test-outcome">passed<' in tested.text, tested.text
    # The stored password removed: the same test now fails, and says which check.
    fields = {**_form_fields(page), "remove.bind_password": "true"}
    assert (await client.post(path, data=fields, headers=HTML)).status_code == 303
    page = await client.get(path, headers=HTML)
    assert 'id="secrets-set">none<' in page.text
    failed = await client.post(
        f"{path}/test", data={"csrf_token": _csrf(page), "sample_username": "alice"}, headers=HTML
    )
    assert 'id="test-outcome">failed<' in failed.text
    assert "<td>failed</td>" in failed.text


async def test_saml_provider_through_the_form(
    client: httpx.AsyncClient, factory: Factory, saml_idp: SamlIdp
):
    await _admin(client, factory)
    path = await _create(
        client, {"template": "adfs"}, name="AD FS",
        **{"config.idp_metadata_url": saml_idp.metadata_url},
    )  # fmt: skip
    page = await client.get(path, headers=HTML)
    assert "Download the SP metadata" in page.text
    assert 'id="refresh-status">ok' in page.text  # fetched when saved
    found = re.search(r'href="([^"]+/metadata)" download>', page.text)
    assert found, page.text
    link = found.group(1)
    assert "/api/auth/sso/saml/" in link
    sp = await client.get(link)
    assert sp.status_code == 200
    assert "EntityDescriptor" in sp.text
    tested = await client.post(f"{path}/test", data={"csrf_token": _csrf(page)}, headers=HTML)
    assert 'id="test-outcome">passed<' in tested.text, tested.text
