"""ID-token attacks from a hostile provider (real HTTP on loopback), each refused.

These exercise token validation only, so they run on the embedded backend alone to keep the
suite fast (state handling is covered on both backends in test_oidc.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc import jws
from joserfc.jwk import RSAKey

from tests.fixtures.rogue_oidc import CLIENT_ID, RogueIdp, b64url
from tests.sso.conftest import Org, add_provider


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture(scope="module")
def rogue_server() -> Iterator[RogueIdp]:
    idp = RogueIdp()
    idp.start()
    yield idp
    idp.stop()


@pytest.fixture
async def rogue(client: httpx.AsyncClient, acme: Org, rogue_server: RogueIdp) -> RogueIdp:
    rogue_server.reset()
    await add_provider(
        client,
        acme,
        config={
            "protocol": "oidc",
            "issuer": rogue_server.issuer,
            "client_id": CLIENT_ID,
            "use_userinfo": False,
        },
        secrets={"client_secret": "s"},
    )
    return rogue_server


async def _sign_in(client: httpx.AsyncClient) -> httpx.Response:
    started = await client.post("/api/auth/sso/initiate", json={"tenant": "acme"})
    assert started.status_code == 200, started.text
    async with httpx.AsyncClient() as browser:
        redirect = await browser.get(started.json()["redirect_url"])
    return await client.get(redirect.headers["location"].replace("http://testserver", ""))


def _refused(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    return str(response.json()["error"]["code"])


async def test_well_formed_token_signs_in(client: httpx.AsyncClient, rogue: RogueIdp) -> None:
    response = await _sign_in(client)
    assert response.status_code == 200, response.text
    assert response.json()["user"]["email"] == "mallory@acme.example.com"


async def test_token_signed_by_another_key_is_refused(
    client: httpx.AsyncClient, rogue: RogueIdp
) -> None:
    impostor = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    rogue.mint = lambda claims: rogue.sign(claims, impostor)
    assert _refused(await _sign_in(client)) == "sso_bad_signature"


async def test_token_with_unknown_key_id_is_refused(
    client: httpx.AsyncClient, rogue: RogueIdp
) -> None:
    impostor = RSAKey.generate_key(2048, parameters={"kid": "not-published"})
    rogue.mint = lambda claims: rogue.sign(claims, impostor)
    assert _refused(await _sign_in(client)) == "sso_unknown_key"


async def test_alg_none_is_refused(client: httpx.AsyncClient, rogue: RogueIdp) -> None:
    rogue.mint = RogueIdp.unsigned
    assert _refused(await _sign_in(client)) == "sso_bad_alg"


async def test_deeply_nested_id_token_header_or_claims_are_refused(
    client: httpx.AsyncClient, rogue: RogueIdp
) -> None:
    deep = b"[" * 10_000 + b"]" * 10_000
    rogue.mint = lambda claims: f"{b64url(deep)}.{b64url(json.dumps(claims).encode())}."
    assert _refused(await _sign_in(client)) == "sso_bad_id_token"
    header = {"alg": "RS256", "kid": rogue.key.kid}
    rogue.mint = lambda claims: jws.serialize_compact(header, deep, rogue.key)
    assert _refused(await _sign_in(client)) == "sso_bad_signature"


@pytest.mark.parametrize(
    ("claim", "value", "code"),
    [
        ("iss", "https://evil.example.net", "sso_bad_issuer"),
        ("aud", "another-client", "sso_bad_audience"),
        ("aud", ["another-client", CLIENT_ID], "sso_bad_audience"),
        ("exp", 1_000_000_000, "sso_expired"),
        ("nonce", "replayed-nonce", "sso_bad_nonce"),
    ],
)
async def test_wrong_claims_are_refused(
    client: httpx.AsyncClient, rogue: RogueIdp, claim: str, value: Any, code: str
) -> None:
    rogue.mint = lambda claims: rogue.sign({**claims, claim: value})
    assert _refused(await _sign_in(client)) == code


async def test_key_rollover_refetches_the_jwks(client: httpx.AsyncClient, rogue: RogueIdp) -> None:
    first = await _sign_in(client)
    assert first.status_code == 200  # the JWKS with k1 is now cached
    new_key = RSAKey.generate_key(2048, parameters={"kid": "k2"})
    rogue.published = [rogue.key, new_key]
    rogue.mint = lambda claims: rogue.sign(claims, new_key)
    second = await _sign_in(client)
    assert second.status_code == 200, second.text


async def test_mfa_asserted_by_the_idp_is_recorded_in_amr(
    client: httpx.AsyncClient, rogue: RogueIdp
) -> None:
    rogue.mint = lambda claims: rogue.sign({**claims, "amr": ["pwd", "mfa"]})
    response = await _sign_in(client)
    assert response.status_code == 200, response.text
    sessions = await client.get(
        "/api/auth/sessions",
        headers={"Authorization": f"Bearer {response.json()['access_token']}"},
    )
    assert sessions.json()[0]["amr"] == ["ext", "oidc", "mfa"]
