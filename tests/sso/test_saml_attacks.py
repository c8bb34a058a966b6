"""Forged and tampered SAML responses, each refused.

These exercise response validation only (no database or cache behaviour), so they run on the
embedded backend alone to keep the suite fast; replay and state tests run on both backends.
"""

from __future__ import annotations

import base64
import datetime as dt
import re

import httpx
import pytest

from tests.fixtures.saml_idp import SamlIdp
from tests.sso.conftest import Org
from tests.sso.saml_flow import post_saml, rejected, saml_provider, signed_response, start_saml


@pytest.fixture
def backend() -> str:
    return "sqlite"


async def test_unsigned_assertion_is_refused(
    client: httpx.AsyncClient, acme: Org, saml_idp: SamlIdp
) -> None:
    await saml_provider(client, acme, saml_idp)
    request, relay = await start_saml(client)
    unsigned = signed_response(saml_idp, request, sign=False)
    code = rejected(
        await post_saml(client, request.assertion_consumer_service_url, unsigned, relay)
    )
    assert code == "saml_unsigned"


async def test_tampered_assertion_is_refused(
    client: httpx.AsyncClient, acme: Org, saml_idp: SamlIdp
) -> None:
    await saml_provider(client, acme, saml_idp)
    request, relay = await start_saml(client)
    xml = base64.b64decode(signed_response(saml_idp, request)).decode()
    tampered = xml.replace("alice@acme.example.com", "root@acme.example.com")
    b64 = base64.b64encode(tampered.encode()).decode()
    code = rejected(await post_saml(client, request.assertion_consumer_service_url, b64, relay))
    assert code == "saml_invalid"


def _split_assertion(xml: str) -> tuple[str, str, str]:
    """(text before the assertion, the signed assertion, text after it)."""
    match = re.search(r"<(\w+):Assertion\b.*?</\1:Assertion>", xml, re.S)
    assert match is not None
    return xml[: match.start()], match.group(0), xml[match.end() :]


def _evil_copy(assertion: str, new_id: str | None) -> str:
    evil = re.sub(r"<ns\d:Signature\b.*?</ns\d:Signature>", "", assertion, flags=re.S)
    evil = re.sub(r"<(\w+):Signature\b.*?</\1:Signature>", "", evil, flags=re.S)
    evil = evil.replace("alice@acme.example.com", "root@acme.example.com")
    if new_id is not None:
        evil = re.sub(r'ID="[^"]+"', f'ID="{new_id}"', evil, count=1)
    return evil


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("second_assertion", "saml_assertion_count"),
        ("wrapped_in_extensions", "saml_assertion_count"),
        ("signature_moved", "saml_signature_shape"),
        ("duplicate_id", "saml_assertion_count"),
    ],
)
async def test_signature_wrapping_is_refused(
    client: httpx.AsyncClient, acme: Org, saml_idp: SamlIdp, variant: str, expected: str
) -> None:
    await saml_provider(client, acme, saml_idp)
    request, relay = await start_saml(client)
    xml = base64.b64decode(signed_response(saml_idp, request)).decode()
    before, signed, after = _split_assertion(xml)
    if variant == "second_assertion":  # evil assertion first, the signed one after it
        forged = before + _evil_copy(signed, "evil-1") + signed + after
    elif variant == "wrapped_in_extensions":  # signed one hidden in Extensions (XSW1/2)
        ext = "<ns0:Extensions xmlns:ns0='urn:oasis:names:tc:SAML:2.0:protocol'>"
        forged = before + ext + signed + "</ns0:Extensions>" + _evil_copy(signed, "evil-2") + after
    elif variant == "signature_moved":  # evil assertion carries the original's signature (XSW3+)
        signature = re.search(r"<(\w+):Signature\b.*?</\1:Signature>", signed, re.S)
        assert signature is not None
        evil = _evil_copy(signed, "evil-3")
        head_end = evil.index(">", evil.index("<ns1:Issuer") if "<ns1:Issuer" in evil else 0)
        evil = evil[: head_end + 1] + signature.group(0) + evil[head_end + 1 :]
        forged = before + evil + after
    else:  # same ID twice: the verifier and the reader could pick different elements
        forged = before + signed + _evil_copy(signed, None) + after
    b64 = base64.b64encode(forged.encode()).decode()
    response = await post_saml(client, request.assertion_consumer_service_url, b64, relay)
    # Our structural check catches each before pysaml2 (which would refuse them too).
    assert rejected(response) == expected


async def test_wrong_audience_is_refused(
    client: httpx.AsyncClient, acme: Org, saml_idp: SamlIdp
) -> None:
    await saml_provider(client, acme, saml_idp)
    request, relay = await start_saml(client)
    forged = signed_response(saml_idp, request, audience="https://another-sp.example.com/metadata")
    code = rejected(await post_saml(client, request.assertion_consumer_service_url, forged, relay))
    assert code == "saml_invalid"


async def test_wrong_recipient_is_refused(
    client: httpx.AsyncClient, acme: Org, saml_idp: SamlIdp
) -> None:
    await saml_provider(client, acme, saml_idp)
    request, relay = await start_saml(client)
    forged = signed_response(saml_idp, request, recipient="https://another-sp.example.com/acs")
    rejected(await post_saml(client, request.assertion_consumer_service_url, forged, relay))


async def test_expired_assertion_is_refused(
    client: httpx.AsyncClient, acme: Org, saml_idp: SamlIdp
) -> None:
    await saml_provider(client, acme, saml_idp)
    request, relay = await start_saml(client)
    expired = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    forged = signed_response(saml_idp, request, not_on_or_after=expired)
    code = rejected(await post_saml(client, request.assertion_consumer_service_url, forged, relay))
    assert code == "saml_invalid"


async def test_in_response_to_mismatch_is_refused(
    client: httpx.AsyncClient, acme: Org, saml_idp: SamlIdp
) -> None:
    await saml_provider(client, acme, saml_idp)
    request, relay = await start_saml(client)
    forged = signed_response(saml_idp, request, in_response_to="id-of-another-request")
    code = rejected(await post_saml(client, request.assertion_consumer_service_url, forged, relay))
    assert code in {"saml_invalid", "saml_in_response_to"}


async def test_doctype_is_refused(client: httpx.AsyncClient, acme: Org, saml_idp: SamlIdp) -> None:
    await saml_provider(client, acme, saml_idp)
    request, relay = await start_saml(client)
    xml = base64.b64decode(signed_response(saml_idp, request)).decode()
    bomb = '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">]>' + xml.split("?>", 1)[-1]
    b64 = base64.b64encode(bomb.encode()).decode()
    code = rejected(await post_saml(client, request.assertion_consumer_service_url, b64, relay))
    assert code == "saml_doctype"


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "%%%not-base64%%%",
        base64.b64encode(b"<x/>").decode(),
        base64.b64encode(b"\xff\xfe").decode(),
    ],
)
async def test_garbage_saml_response_is_a_clean_refusal(
    client: httpx.AsyncClient, acme: Org, saml_idp: SamlIdp, garbage: str
) -> None:
    provider = await saml_provider(client, acme, saml_idp, config={"allow_idp_initiated": True})
    response = await post_saml(client, provider["acs_url"], garbage, None)
    assert response.status_code in {401, 422}, response.text
