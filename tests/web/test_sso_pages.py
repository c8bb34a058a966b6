"""Single sign-on through the pages, in process on both backends, against the real IdPs of the
SSO tests (node oidc-provider, OpenLDAP slapd): home-realm discovery from the email, the
provider's pages, the return bound to the browser that started, the MFA gate, the LDAP form."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.fixtures.factories import Factory
from tests.fixtures.oidc_provider import OidcProvider, browser_login
from tests.fixtures.saml_idp import SamlIdp, parse_autopost
from tests.fixtures.slapd import Slapd
from tests.mfa.helpers import enrol_totp
from tests.sso.conftest import (  # noqa: F401 - fixtures used here
    CALLBACK,
    Org,
    acme,
    add_provider,
    ldap_body,
    oidc_body,
    oidc_idp,
    saml_idp,
    slapd,
)
from tests.sso.saml_flow import saml_provider, sp_path
from tests.web.helpers import HTML, alert_of, submit

SESSION = "bfl_session"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # The IdPs listen on loopback, which production refuses (SSRF guard).
    return {"sso_allow_private_networks": True, "argon2_time_cost": 1, "argon2_memory_kib": 1024}


async def _to_provider(client: httpx.AsyncClient, email: str) -> str:
    """The discovery form; the provider's URL on the hand-off page."""
    page = await submit(
        client, "/signin/sso?next=/studio", "/signin/sso", email=email, next="/studio"
    )
    assert page.status_code == 200, page.text
    assert 'src="/static/js/sso.mjs' in page.text
    found = re.search(r'id="sso-continue" href="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1).replace("&amp;", "&")


async def _back_from_provider(client: httpx.AsyncClient, url: str, login: str) -> str:
    """Sign in at the provider; our callback's redirect: the return page with its code."""
    back = await browser_login(url, login, CALLBACK)
    answer = await client.get(back.replace("http://testserver", ""), headers=HTML)
    assert answer.status_code == 303, answer.text
    location = str(answer.headers["location"])
    assert location.startswith("http://testserver/signin/sso/done?b=")
    assert "sso_code=" in location
    return location.replace("http://testserver", "")


async def test_oidc_sign_in_from_the_email_domain(
    client: httpx.AsyncClient,
    acme: Org,  # noqa: F811
    oidc_idp: OidcProvider,  # noqa: F811
):
    await add_provider(client, acme, **oidc_body(oidc_idp))
    url = await _to_provider(client, "alice@acme.example.com")  # no organisation given
    assert url.startswith(f"{oidc_idp.issuer}/")
    done = await client.get(await _back_from_provider(client, url, "alice"), headers=HTML)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/studio"
    assert SESSION in client.cookies
    assert "bfl_sso" not in client.cookies  # the binding is spent
    home = await client.get("/", headers=HTML)
    assert "Alice Streamer" in home.text
    me = await client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {client.cookies[SESSION]}"}
    )
    assert me.json()["role"] == "streamer"  # the provider's group mapping, as in the API


async def test_a_finished_flow_does_not_sign_in_another_browser(
    client: httpx.AsyncClient,
    acme: Org,  # noqa: F811
    oidc_idp: OidcProvider,  # noqa: F811
):
    await add_provider(client, acme, **oidc_body(oidc_idp))
    url = await _to_provider(client, "alice@acme.example.com")
    done_path = await _back_from_provider(client, url, "alice")
    client.cookies.delete("bfl_sso")  # another browser: the victim of a login CSRF
    refused = await client.get(done_path, headers=HTML)
    assert refused.status_code == 400
    assert "not started in this browser" in alert_of(refused)
    assert SESSION not in client.cookies
    # a spent code signs nobody in, even in the browser that started it
    url = await _to_provider(client, "alice@acme.example.com")
    binding = client.cookies["bfl_sso"]
    second = await _back_from_provider(client, url, "alice")
    assert (await client.get(second, headers=HTML)).status_code == 303
    client.cookies.clear()
    client.cookies.set("bfl_sso", binding)
    replayed = await client.get(second, headers=HTML)
    assert replayed.status_code == 401
    assert "already used" in alert_of(replayed)
    assert SESSION not in client.cookies


async def test_saml_sign_in_through_the_idp(
    client: httpx.AsyncClient,
    acme: Org,  # noqa: F811
    saml_idp: SamlIdp,  # noqa: F811
):
    await saml_provider(client, acme, saml_idp)
    url = await _to_provider(client, "alice@acme.example.com")
    async with httpx.AsyncClient(timeout=10) as browser:
        idp_page = await browser.get(url)  # the IdP signs alice in and auto-posts to our ACS
    action, fields = parse_autopost(idp_page.text)
    acs = await client.post(sp_path(action), data=fields, headers=HTML)
    assert acs.status_code == 303, acs.text
    location = str(acs.headers["location"])
    assert location.startswith("http://testserver/signin/sso/done?b=")
    done = await client.get(location.replace("http://testserver", ""), headers=HTML)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/studio"
    assert "Alice Streamer" in (await client.get("/", headers=HTML)).text


async def test_the_tenants_mfa_applies_after_sso(
    client: httpx.AsyncClient,
    acme: Org,  # noqa: F811
    oidc_idp: OidcProvider,  # noqa: F811
    factory: Factory,
):
    alice = await factory.user(acme.tenant, email="alice@acme.example.com")
    await enrol_totp(client, alice)
    await add_provider(client, acme, **oidc_body(oidc_idp))
    url = await _to_provider(client, "alice@acme.example.com")
    done = await client.get(await _back_from_provider(client, url, "alice"), headers=HTML)
    assert done.status_code == 303
    assert done.headers["location"] == "/signin/mfa?next=/studio"
    assert SESSION not in client.cookies
    assert "bfl_mfa_challenge" in client.cookies


async def test_ldap_sign_in_on_the_directory_form(
    client: httpx.AsyncClient,
    acme: Org,  # noqa: F811
    slapd: Slapd,  # noqa: F811
):
    await add_provider(client, acme, **ldap_body(slapd))
    form = await submit(client, "/signin/sso", "/signin/sso", email="alice@acme.example.com")
    assert form.status_code == 200
    assert "Directory user name" in form.text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.text))
    assert fields["tenant"] == "acme"
    wrong = await client.post(
        "/signin/ldap", data={**fields, "username": "alice", "password": "nope"}, headers=HTML
    )
    assert wrong.status_code == 401
    assert SESSION not in client.cookies
    done = await client.post(
        "/signin/ldap", data={**fields, "username": "alice", "password": "alicepw"}, headers=HTML
    )
    assert done.status_code == 303, done.text
    assert SESSION in client.cookies


async def test_discovery_errors_and_csrf(
    client: httpx.AsyncClient,
    acme: Org,  # noqa: F811
):
    unknown = await submit(client, "/signin/sso", "/signin/sso", email="x@nowhere.example")
    assert unknown.status_code == 404
    assert alert_of(unknown) == "No such tenant"
    none = await submit(client, "/signin/sso", "/signin/sso", email="bob@acme.example.com")
    assert none.status_code == 404
    assert alert_of(none) == "This organisation has no SSO provider"
    invalid = await submit(client, "/signin/sso", "/signin/sso", email="not-an-email")
    assert invalid.status_code == 422
    refused = await client.post("/signin/sso", data={"email": "bob@acme.example.com"}, headers=HTML)
    assert refused.status_code == 403
    assert "csrf_failed" in refused.text
    no_binding = await client.get("/signin/sso/done?b=abc&sso_code=def", headers=HTML)
    assert no_binding.status_code == 400
