"""SAML 2.0 sign-in against pysaml2's IdP (saml2.server.Server signing with xmlsec1) on loopback,
and the attacks an SP must withstand."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.fixtures.saml_idp import SamlIdp, SamlUser, parse_autopost
from tests.sso.conftest import APP_RETURN, Org, add_provider
from tests.sso.saml_flow import (
    post_saml,
    rejected,
    saml_provider,
    signed_response,
    sp_path,
    start_saml,
)

# ---------------------------------------------------------------- sign-in


async def test_saml_login_through_the_idp_provisions_user(
    client: httpx.AsyncClient, acme: Org, saml_idp: SamlIdp
) -> None:
    await saml_provider(client, acme, saml_idp)
    started = await client.post("/api/auth/sso/initiate", json={"email": "alice@acme.example.com"})
    assert started.status_code == 200
    async with httpx.AsyncClient(timeout=10) as browser:
        page = await browser.get(started.json()["redirect_url"])
    action, fields = parse_autopost(page.text)
    response = await client.post(sp_path(action), data=fields)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"  # it carries tokens
    user = response.json()["user"]
    assert (user["email"], user["role"], user["tenant_slug"]) == (
        "alice@acme.example.com",
        "streamer",
        "acme",
    )
    sessions = await client.get(
        "/api/auth/sessions",
        headers={"Authorization": f"Bearer {response.json()['access_token']}"},
    )
    assert sessions.json()[0]["amr"] == ["ext", "saml"]


async def test_group_mapping_grants_admin_and_is_reapplied(
    client: httpx.AsyncClient, acme: Org, saml_idp: SamlIdp
) -> None:
    await saml_provider(client, acme, saml_idp)
    boss = SamlUser("bob", "bob@acme.example.com", "Bob", ["bfl-admins"])
    request, relay = await start_saml(client)
    first = await post_saml(
        client,
        request.assertion_consumer_service_url,
        signed_response(saml_idp, request, user=boss),
        relay,
    )
    assert first.json()["user"]["role"] == "admin"
    demoted = SamlUser("bob", "bob@acme.example.com", "Bob", [])
    request, relay = await start_saml(client)
    second = await post_saml(
        client,
        request.assertion_consumer_service_url,
        signed_response(saml_idp, request, user=demoted),
        relay,
    )
    assert second.status_code == 200
    assert second.json()["user"]["role"] == "viewer"


async def test_multi_factor_authn_context_is_recorded_in_amr(
    client: httpx.AsyncClient, acme: Org, saml_idp: SamlIdp
) -> None:
    await saml_provider(client, acme, saml_idp)
    request, relay = await start_saml(client)
    two_factor = "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken"
    forged = signed_response(saml_idp, request, authn_class=two_factor)
    response = await post_saml(client, request.assertion_consumer_service_url, forged, relay)
    assert response.status_code == 200, response.text
    sessions = await client.get(
        "/api/auth/sessions",
        headers={"Authorization": f"Bearer {response.json()['access_token']}"},
    )
    assert sessions.json()[0]["amr"] == ["ext", "saml", "mfa"]


async def test_sp_metadata_names_our_acs(
    client: httpx.AsyncClient, acme: Org, saml_idp: SamlIdp
) -> None:
    provider = await saml_provider(client, acme, saml_idp)
    metadata = await client.get(sp_path(provider["sp_metadata_url"]))
    assert metadata.headers["content-type"].startswith("application/samlmetadata+xml")
    assert f'entityID="{provider["sp_entity_id"]}"' in metadata.text
    assert provider["acs_url"] in metadata.text


async def test_certificate_rollover_accepts_the_second_certificate(
    client: httpx.AsyncClient, acme: Org, saml_idp: SamlIdp, tmp_path: Path
) -> None:
    new_idp = SamlIdp(tmp_path, name="idp")
    new_idp.entity_id = saml_idp.entity_id
    new_server = new_idp._server(new_idp.key, new_idp.cert)
    new_cert = "".join(new_idp.cert.read_text().splitlines()[1:-1])
    metadata = saml_idp.metadata_xml()
    key_descriptor = re.search(r"<ns0:KeyDescriptor.*?</ns0:KeyDescriptor>", metadata, re.S)
    assert key_descriptor is not None
    second = re.sub(
        r"<ns2:X509Certificate>.*?</ns2:X509Certificate>",
        f"<ns2:X509Certificate>{new_cert}</ns2:X509Certificate>",
        key_descriptor.group(0),
        flags=re.S,
    )
    metadata = metadata.replace(key_descriptor.group(0), key_descriptor.group(0) + second)
    provider = await add_provider(
        client, acme, config={"protocol": "saml", "idp_metadata_xml": metadata}
    )
    saml_idp.register_sp((await client.get(sp_path(provider["sp_metadata_url"]))).text)
    request, relay = await start_saml(client)
    signed_by_new_key = signed_response(saml_idp, request, signer=new_server)
    response = await post_saml(
        client, request.assertion_consumer_service_url, signed_by_new_key, relay
    )
    assert response.status_code == 200, response.text


# ---------------------------------------------------------------- attacks


async def test_replayed_response_is_refused(
    client: httpx.AsyncClient, acme: Org, saml_idp: SamlIdp
) -> None:
    await saml_provider(client, acme, saml_idp)
    request, relay = await start_saml(client)
    good = signed_response(saml_idp, request)
    first = await post_saml(client, request.assertion_consumer_service_url, good, relay)
    assert first.status_code == 200
    again = await post_saml(client, request.assertion_consumer_service_url, good, relay)
    assert rejected(again) == "sso_bad_state"


async def test_replayed_idp_initiated_assertion_is_refused(
    client: httpx.AsyncClient, acme: Org, saml_idp: SamlIdp
) -> None:
    provider = await saml_provider(client, acme, saml_idp, config={"allow_idp_initiated": True})
    unsolicited = saml_idp.response(
        in_response_to=None, acs_url=provider["acs_url"], sp_entity_id=provider["sp_entity_id"]
    )
    first = await post_saml(client, provider["acs_url"], unsolicited, None)
    assert first.status_code == 200, first.text
    again = await post_saml(client, provider["acs_url"], unsolicited, None)
    assert rejected(again) == "saml_replayed"


async def test_idp_initiated_login_is_off_by_default(
    client: httpx.AsyncClient, acme: Org, saml_idp: SamlIdp
) -> None:
    provider = await saml_provider(client, acme, saml_idp)
    unsolicited = saml_idp.response(
        in_response_to=None, acs_url=provider["acs_url"], sp_entity_id=provider["sp_entity_id"]
    )
    assert rejected(await post_saml(client, provider["acs_url"], unsolicited, None)) == (
        "saml_unsolicited"
    )


async def test_relay_state_redirects_only_to_allow_listed_urls(
    client: httpx.AsyncClient, acme: Org, saml_idp: SamlIdp
) -> None:
    provider = await saml_provider(client, acme, saml_idp, config={"allow_idp_initiated": True})

    def unsolicited() -> str:
        return saml_idp.response(
            in_response_to=None,
            acs_url=provider["acs_url"],
            sp_entity_id=provider["sp_entity_id"],
        )

    evil = await post_saml(client, provider["acs_url"], unsolicited(), "https://evil.example.net/x")
    assert evil.status_code == 400
    assert evil.json()["error"]["code"] == "invalid_redirect_uri"
    good = await post_saml(client, provider["acs_url"], unsolicited(), APP_RETURN)
    assert good.status_code == 303
    assert good.headers["location"].startswith(APP_RETURN + "?sso_code=")


async def test_another_tenants_idp_cannot_sign_into_this_tenant(
    client: httpx.AsyncClient, acme: Org, globex: Org, saml_idp: SamlIdp, tmp_path: Path
) -> None:
    other_idp = SamlIdp(tmp_path, name="globex-idp")
    other_idp.start()
    try:
        acme_provider = await saml_provider(client, acme, saml_idp)
        globex_provider = await saml_provider(client, globex, other_idp)
        # acme's IdP signs a response addressed to globex's ACS: globex does not trust it.
        saml_idp.register_sp((await client.get(sp_path(globex_provider["sp_metadata_url"]))).text)
        forged = saml_idp.response(
            in_response_to=None,
            acs_url=globex_provider["acs_url"],
            sp_entity_id=globex_provider["sp_entity_id"],
        )
        rejected(await post_saml(client, globex_provider["acs_url"], forged, None))
        # acme's provider id under globex's slug does not exist.
        wrong_tenant = globex_provider["acs_url"].replace(
            globex_provider["id"], acme_provider["id"]
        )
        response = await post_saml(client, wrong_tenant, forged, None)
        assert response.status_code == 404
    finally:
        other_idp.stop()


async def test_mapping_never_demotes_the_last_admin(
    client: httpx.AsyncClient, acme: Org, saml_idp: SamlIdp, state
) -> None:
    await saml_provider(client, acme, saml_idp)
    boss = SamlUser("bob", "bob@acme.example.com", "Bob", ["bfl-admins"])
    request, relay = await start_saml(client)
    first = await post_saml(
        client,
        request.assertion_consumer_service_url,
        signed_response(saml_idp, request, user=boss),
        relay,
    )
    assert first.json()["user"]["role"] == "admin"
    async with state.db.transaction() as session:  # bob becomes the tenant's only admin
        root = await session.get(type(acme.admin.user), acme.admin.user.id)
        root.role = "viewer"
    request, relay = await start_saml(client)
    no_groups = SamlUser("bob", "bob@acme.example.com", "Bob", [])
    second = await post_saml(
        client,
        request.assertion_consumer_service_url,
        signed_response(saml_idp, request, user=no_groups),
        relay,
    )
    assert second.status_code == 200
    assert second.json()["user"]["role"] == "admin"
