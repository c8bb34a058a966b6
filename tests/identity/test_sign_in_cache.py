"""The tenant a password sign-in names by slug comes from a per-process cache
(`tenants.cache`): its status and policies (MFA, lockout) as an admin changes them are seen
by the next sign-in on this instance at once and, through pub/sub, on another instance that
had the old row cached."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bigfootlive.authz.roles import Role
from bigfootlive.config import Settings
from bigfootlive.models import Tenant
from bigfootlive.tenants import service as tenants
from tests.fixtures import polling
from tests.fixtures.instances import second_instance


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Longer than any test: an entry can only go because a change was heard, never by age.
    return {"sign_in_policy_cache_seconds": 600}


async def _sign_in(http: httpx.AsyncClient, account) -> httpx.Response:
    body = {
        "tenant": account.tenant.slug,
        "email": account.user.email,
        "password": account.password,
    }
    return await http.post("/api/auth/login", json=body)


async def _set_active(state, tenant: Tenant, active: bool) -> None:
    async with state.db.transaction() as session:
        row = await tenants.get_tenant(session, tenant.id)
        assert row is not None
        assert await tenants.set_active(state, session, None, row, active)


def _cached(state, tenant: Tenant) -> bool:
    return state.tenant_cache.local.get(tenant.slug) is not None


async def test_a_changed_mfa_policy_applies_to_the_next_sign_in(client, factory, state):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    member = await factory.user(tenant, role=Role.STREAMER, login=False)
    assert (await _sign_in(client, member)).json()["status"] == "ok"
    assert _cached(state, tenant)
    changed = await client.put(
        "/api/tenant/info",
        json={"settings": {"mfa": {"mode": "required_for_roles", "roles": ["streamer"]}}},
        headers=admin.headers,
    )
    assert changed.status_code == 200, changed.text
    assert (await _sign_in(client, member)).json()["status"] == "mfa_enrollment_required"


async def test_a_deactivated_tenant_refuses_the_next_sign_in(client, factory, state):
    tenant = await factory.tenant()
    member = await factory.user(tenant, login=False)
    assert (await _sign_in(client, member)).status_code == 200
    await _set_active(state, tenant, False)
    refused = await _sign_in(client, member)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_credentials"
    await _set_active(state, tenant, True)
    assert (await _sign_in(client, member)).status_code == 200


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_changes_reach_another_instance(client, factory, state, settings: Settings):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    member = await factory.user(tenant, role=Role.STREAMER, login=False)
    async with second_instance(settings) as (other, other_state):
        assert (await _sign_in(other, member)).json()["status"] == "ok"
        assert _cached(other_state, tenant)  # the old policy, kept
        changed = await client.put(
            "/api/tenant/info",
            json={"settings": {"mfa": {"mode": "required"}}},
            headers=admin.headers,
        )
        assert changed.status_code == 200, changed.text
        await polling.until(lambda: not _cached(other_state, tenant))
        assert (await _sign_in(other, member)).json()["status"] == "mfa_enrollment_required"

        assert (await _sign_in(other, admin)).status_code == 200  # cached again
        await _set_active(state, tenant, False)  # a change outside any request
        await polling.until(lambda: not _cached(other_state, tenant))
        refused = await _sign_in(other, admin)
        assert refused.json()["error"]["code"] == "invalid_credentials"


@pytest.mark.parametrize("settings_overrides", [{"sign_in_policy_cache_seconds": 0}])
async def test_without_the_cache_every_sign_in_reads_the_tenant(client, factory, state):
    tenant = await factory.tenant()
    member = await factory.user(tenant, login=False)
    assert (await _sign_in(client, member)).status_code == 200
    assert not _cached(state, tenant)
