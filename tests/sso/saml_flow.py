"""Helpers for SAML tests: register a provider with the IdP, start a flow, post to the ACS."""

from __future__ import annotations

import base64
import zlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from saml2 import samlp

from tests.fixtures.saml_idp import SamlIdp
from tests.sso.conftest import Org, add_provider

ROLE_MAPPING = {"streamers": "streamer", "bfl-admins": "admin"}


async def saml_provider(
    client: httpx.AsyncClient, org: Org, idp: SamlIdp, **extra: Any
) -> dict[str, Any]:
    config: dict[str, Any] = {"protocol": "saml", "idp_metadata_url": idp.metadata_url}
    config.update(extra.pop("config", {}))
    provider = await add_provider(client, org, config=config, role_mapping=ROLE_MAPPING, **extra)
    metadata = await client.get(provider["sp_metadata_url"].replace("http://testserver", ""))
    assert metadata.status_code == 200
    idp.register_sp(metadata.text)
    return provider


def sp_path(url: str) -> str:
    return url.replace("http://testserver", "")


async def start_saml(
    client: httpx.AsyncClient, tenant: str = "acme"
) -> tuple[samlp.AuthnRequest, str]:
    response = await client.post("/api/auth/sso/initiate", json={"tenant": tenant})
    assert response.status_code == 200, response.text
    query = parse_qs(urlsplit(response.json()["redirect_url"]).query)
    xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15).decode()
    return samlp.authn_request_from_string(xml), query["RelayState"][0]


async def post_saml(
    client: httpx.AsyncClient, acs_url: str, saml_response: str, relay_state: str | None
) -> httpx.Response:
    data = {"SAMLResponse": saml_response}
    if relay_state is not None:
        data["RelayState"] = relay_state
    return await client.post(sp_path(acs_url), data=data)


def signed_response(idp: SamlIdp, request: samlp.AuthnRequest, **kwargs: Any) -> str:
    return idp.response(
        in_response_to=kwargs.pop("in_response_to", request.id),
        acs_url=request.assertion_consumer_service_url,
        sp_entity_id=request.issuer.text,
        **kwargs,
    )


def rejected(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    return str(response.json()["error"]["code"])
