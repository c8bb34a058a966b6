"""The SSO policy a password sign-in applies comes from a per-process cache
(`sso.policy_cache`); a tenant admin's change is seen by the next sign-in on this instance at
once and, through pub/sub, on another instance that had the old policy cached."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bigfootlive.authz.roles import Role
from bigfootlive.config import Settings
from tests.fixtures import polling
from tests.fixtures.factories import PASSWORD
from tests.fixtures.instances import second_instance
from tests.fixtures.oidc_provider import OidcProvider
from tests.sso.conftest import Org, add_provider, oidc_body


@pytest.fixture
def settings_overrides(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    # Longer than any test: an entry can only go because a change was heard, never by age.
    return {**settings_overrides, "sign_in_policy_cache_seconds": 600}


async def _password_login(http: httpx.AsyncClient, email: str) -> httpx.Response:
    return await http.post(
        "/api/auth/login", json={"tenant": "acme", "email": email, "password": PASSWORD}
    )


async def test_sso_required_is_seen_by_the_next_sign_in_on_this_instance(
    client: httpx.AsyncClient, acme: Org, oidc_idp: OidcProvider, factory, state
) -> None:
    member = await factory.user(acme.tenant, role=Role.STREAMER, login=False)
    assert (await _password_login(client, member.user.email)).status_code == 200
    assert state.sso_policies.local.get(acme.tenant.id) == ()  # cached: no provider requires it
    await add_provider(client, acme, **oidc_body(oidc_idp, sso_required=True))
    refused = await _password_login(client, member.user.email)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "sso_required"


async def test_a_provider_change_reaches_another_instance(
    client: httpx.AsyncClient,
    acme: Org,
    oidc_idp: OidcProvider,
    factory,
    backend: str,
    settings: Settings,
) -> None:
    if backend == "sqlite":
        pytest.skip("without Redis nothing is shared: one process is the deployment")
    member = await factory.user(acme.tenant, role=Role.STREAMER, login=False)
    async with second_instance(settings) as (other, other_state):
        assert (await _password_login(other, member.user.email)).status_code == 200
        assert other_state.sso_policies.local.get(acme.tenant.id) == ()  # the old policy, kept
        provider = await add_provider(client, acme, **oidc_body(oidc_idp, sso_required=True))
        await polling.until(lambda: other_state.sso_policies.local.get(acme.tenant.id) is None)
        refused = await _password_login(other, member.user.email)
        assert refused.json()["error"]["code"] == "sso_required"
        # ... and turning the requirement off again (a change, not a new provider) too.
        await add_provider(
            client, acme, id=provider["id"], **oidc_body(oidc_idp, sso_required=False)
        )
        await polling.until(lambda: other_state.sso_policies.local.get(acme.tenant.id) is None)
        assert (await _password_login(other, member.user.email)).status_code == 200
