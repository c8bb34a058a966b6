"""The IdP metadata refresh job, run through the job queue against real IdPs on loopback: the
rogue OIDC provider (it rotates keys and can take its metadata endpoints down) and pysaml2's
SAML IdP with a key pair of its own per test."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from croniter import croniter
from joserfc.jwk import RSAKey

from bigfootlive.composition import AppState
from bigfootlive.jobs.registry import CRONS, load_tasks
from bigfootlive.sso import oidc_metadata
from bigfootlive.sso.tasks import refresh_sso_metadata
from tests.fixtures.rogue_oidc import CLIENT_ID, RogueIdp
from tests.fixtures.saml_idp import SamlIdp
from tests.sso.conftest import Org, add_provider
from tests.sso.saml_flow import post_saml, rejected, saml_provider, signed_response, start_saml


@pytest.fixture
def settings_overrides(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    # Jobs run in the test process on both backends; no cron fires by itself during a test.
    return {**settings_overrides, "jobs_inprocess_worker": True, "jobs_scheduler": False}


@pytest.fixture
def rogue() -> Iterator[RogueIdp]:
    idp = RogueIdp()
    idp.start()
    yield idp
    idp.stop()


@pytest.fixture
def saml_idp(tmp_path: Path) -> Iterator[SamlIdp]:
    """Its own IdP (not the session's): these tests change its keys and its metadata."""
    idp = SamlIdp(tmp_path, name="idp")
    idp.start()
    yield idp
    idp.stop()


async def _oidc_provider(client: httpx.AsyncClient, org: Org, idp: RogueIdp) -> dict[str, Any]:
    return await add_provider(
        client,
        org,
        config={
            "protocol": "oidc",
            "issuer": idp.issuer,
            "client_id": CLIENT_ID,
            "use_userinfo": False,
        },
        secrets={"client_secret": "s"},
    )


async def _provider(client: httpx.AsyncClient, org: Org, provider_id: str) -> dict[str, Any]:
    response = await client.get(
        "/api/tenant/sso/provider", params={"id": provider_id}, headers=org.admin.headers
    )
    assert response.status_code == 200, response.text
    return dict(response.json()[0])


async def _refresh(
    client: httpx.AsyncClient, state: AppState, org: Org, provider_id: str
) -> dict[str, Any]:
    """Run the scheduled task through the queue; the provider's refresh status once its own
    job has run."""
    before = (await _provider(client, org, provider_id))["metadata_refresh"]["checked_at"]
    await state.jobs.enqueue(refresh_sso_metadata)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        status: dict[str, Any] = (await _provider(client, org, provider_id))["metadata_refresh"]
        if status["checked_at"] != before:
            return status
        assert loop.time() < deadline, "the refresh job did not run"
        await asyncio.sleep(0.05)


async def _oidc_sign_in(client: httpx.AsyncClient) -> httpx.Response:
    started = await client.post("/api/auth/sso/initiate", json={"tenant": "acme"})
    assert started.status_code == 200, started.text
    async with httpx.AsyncClient() as browser:
        redirect = await browser.get(started.json()["redirect_url"])
    return await client.get(redirect.headers["location"].replace("http://testserver", ""))


# ---------------------------------------------------------------- OIDC


async def test_key_published_before_a_rollover_is_known_when_the_jwks_goes_down(
    client: httpx.AsyncClient, state: AppState, acme: Org, rogue: RogueIdp
) -> None:
    provider = await _oidc_provider(client, acme, rogue)
    assert provider["metadata_refresh"]["status"] is None
    assert (await _oidc_sign_in(client)).status_code == 200  # caches the JWKS with k1 only
    next_key = RSAKey.generate_key(2048, parameters={"kid": "k2"})
    rogue.published = [rogue.key, next_key]

    status = await _refresh(client, state, acme, provider["id"])
    assert status["status"] == "ok", status
    assert status["error"] is None
    assert status["refreshed_at"] == status["checked_at"]

    rogue.metadata_down()
    rogue.mint = lambda claims: rogue.sign(claims, next_key)
    response = await _oidc_sign_in(client)
    assert response.status_code == 200, response.text


async def test_without_the_refresh_a_new_key_fails_while_the_jwks_is_down(
    client: httpx.AsyncClient, acme: Org, rogue: RogueIdp
) -> None:
    """The control for the test above: sign-in alone cannot learn the key in that outage."""
    await _oidc_provider(client, acme, rogue)
    assert (await _oidc_sign_in(client)).status_code == 200
    next_key = RSAKey.generate_key(2048, parameters={"kid": "k2"})
    rogue.published = [rogue.key, next_key]
    rogue.metadata_down()
    rogue.mint = lambda claims: rogue.sign(claims, next_key)
    response = await _oidc_sign_in(client)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "sso_unreachable"


async def test_idp_outage_is_recorded_and_sign_in_uses_the_cached_copy(
    client: httpx.AsyncClient, state: AppState, acme: Org, rogue: RogueIdp
) -> None:
    provider = await _oidc_provider(client, acme, rogue)
    first = await _refresh(client, state, acme, provider["id"])
    assert first["status"] == "ok"

    rogue.metadata_down()
    failed = await _refresh(client, state, acme, provider["id"])
    assert failed["status"] == "error"
    assert failed["error"].startswith("sso_unreachable:")
    assert "503" in failed["error"]
    assert failed["refreshed_at"] == first["refreshed_at"]
    assert failed["checked_at"] > first["checked_at"]

    response = await _oidc_sign_in(client)
    assert response.status_code == 200, response.text


async def test_failed_refresh_keeps_the_cached_copy_past_its_expiry(
    client: httpx.AsyncClient,
    state: AppState,
    acme: Org,
    rogue: RogueIdp,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ttl = 8.0
    monkeypatch.setattr(oidc_metadata, "METADATA_TTL", ttl)
    provider = await _oidc_provider(client, acme, rogue)
    assert (await _refresh(client, state, acme, provider["id"]))["status"] == "ok"
    loop = asyncio.get_running_loop()
    cached_by = loop.time()  # the copies were cached before this, so expire before + ttl
    rogue.metadata_down()
    await asyncio.sleep(3)
    assert (await _refresh(client, state, acme, provider["id"]))["status"] == "error"

    await asyncio.sleep(max(0.0, cached_by + ttl + 0.5 - loop.time()))
    response = await _oidc_sign_in(client)
    assert response.status_code == 200, response.text


def test_refresh_is_scheduled_well_inside_the_cache_lifetime() -> None:
    load_tasks()
    spec = CRONS["sso.tasks.refresh_sso_metadata"]
    assert spec.expression == "*/15 * * * *"
    runs = croniter(spec.expression, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    fires = [runs.get_next(dt.datetime) for _ in range(200)]
    longest_gap = max((b - a).total_seconds() for a, b in itertools.pairwise(fires))
    assert longest_gap * 3 <= oidc_metadata.METADATA_TTL


# ---------------------------------------------------------------- SAML


async def test_saml_certificate_rollover_is_picked_up_by_the_refresh(
    client: httpx.AsyncClient, state: AppState, acme: Org, saml_idp: SamlIdp, tmp_path: Path
) -> None:
    provider = await saml_provider(client, acme, saml_idp)
    assert provider["metadata_refresh"]["status"] == "ok"  # fetched when saved
    saml_idp.rotate_key(tmp_path, "idp-next")

    request, relay = await start_saml(client)
    acs = request.assertion_consumer_service_url
    assert rejected(await post_saml(client, acs, signed_response(saml_idp, request), relay)) == (
        "saml_invalid"
    )

    status = await _refresh(client, state, acme, provider["id"])
    assert status["status"] == "ok", status
    request, relay = await start_saml(client)
    response = await post_saml(client, acs, signed_response(saml_idp, request), relay)
    assert response.status_code == 200, response.text

    audit = await client.get(
        "/api/auth/audit", params={"scope": "tenant"}, headers=acme.admin.headers
    )
    refreshed = [r for r in audit.json()["items"] if r["action"] == "sso.metadata_refreshed"]
    assert len(refreshed) == 1
    assert refreshed[0]["target_id"] == provider["id"]


@pytest.mark.parametrize("served", ["garbled", "another_idp"])
async def test_bad_saml_metadata_does_not_replace_the_stored_copy(
    client: httpx.AsyncClient,
    state: AppState,
    acme: Org,
    saml_idp: SamlIdp,
    tmp_path: Path,
    served: str,
) -> None:
    provider = await saml_provider(client, acme, saml_idp)
    stored = provider["config"]["idp_metadata_xml"]
    if served == "garbled":
        saml_idp.metadata_override = stored[: len(stored) // 2].encode()
        expected = "sso_bad_metadata:"
    else:
        saml_idp.metadata_override = SamlIdp(tmp_path, name="other").metadata_xml().encode()
        expected = "sso_entity_changed:"

    status = await _refresh(client, state, acme, provider["id"])
    assert status["status"] == "error"
    assert status["error"].startswith(expected), status
    assert status["refreshed_at"] == provider["metadata_refresh"]["refreshed_at"]
    after = await _provider(client, acme, provider["id"])
    assert after["config"]["idp_metadata_xml"] == stored

    request, relay = await start_saml(client)
    acs = request.assertion_consumer_service_url
    response = await post_saml(client, acs, signed_response(saml_idp, request), relay)
    assert response.status_code == 200, response.text
