"""The authenticated-principal cache (`identity.principals`) never outlives a change: a revoked
session, a changed role, a disabled account, a deactivated tenant, a changed password or
profile is seen by the very next request, on this app and, with Redis, on another app
instance (its own process state and cache) that has the old principal cached."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from bigfootlive.authz.roles import Role
from bigfootlive.config import Settings
from bigfootlive.identity.principals import user_stamp_key
from bigfootlive.identity.revocation import revoked_key
from bigfootlive.models import Tenant
from bigfootlive.tenants import service as tenants
from tests.fixtures.instances import second_instance

NEW_PASSWORD = "another-plausible-tundra-77"

# The second instance: one app per worker, started afresh with each test's settings.


@pytest.fixture
async def instances(
    backend: str, settings: Settings, client: httpx.AsyncClient
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """The test's client, and with Redis a client of a second app instance sharing the
    database and Redis (without Redis nothing is shared: one process is the deployment)."""
    if backend == "sqlite":
        yield [client]
        return
    async with second_instance(settings) as (http, _):
        yield [client, http]


async def _me(http: httpx.AsyncClient, account) -> httpx.Response:
    return await http.get("/api/auth/me", headers=account.headers)


async def _warm(instances, *accounts) -> None:
    """Every instance has the accounts' principals cached (the second read is a cache hit)."""
    for http in instances:
        for account in accounts:
            for _ in range(2):
                assert (await _me(http, account)).status_code == 200


async def _refused_everywhere(instances, account, code: str) -> None:
    for http in instances:
        response = await _me(http, account)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == code


async def _second_session(factory, account):
    """The same user signed in again (another device): an account object with its tokens."""
    other = type(account)(user=account.user, tenant=account.tenant, password=account.password)
    await factory.login(other)
    return other


async def test_a_logout_is_refused_at_once_on_every_instance(client, factory, instances):
    ann = await factory.user(await factory.tenant())
    await _warm(instances, ann)
    assert (await client.post("/api/auth/logout", headers=ann.headers)).status_code == 204
    await _refused_everywhere(instances, ann, "session_revoked")


async def test_a_terminated_session_is_refused_at_once_on_every_instance(
    client, factory, instances
):
    ann = await factory.user(await factory.tenant())
    phone = await _second_session(factory, ann)
    await _warm(instances, ann, phone)
    ended = await client.delete(f"/api/auth/sessions/{phone.session_id}", headers=ann.headers)
    assert ended.status_code == 204
    await _refused_everywhere(instances, phone, "session_revoked")
    for http in instances:  # the session that ended the other one goes on
        assert (await _me(http, ann)).status_code == 200


async def test_a_revoked_session_stays_refused_when_the_cache_loses_its_entries(
    client, factory, state, instances
):
    ann = await factory.user(await factory.tenant())
    await _warm(instances, ann)
    assert (await client.post("/api/auth/logout", headers=ann.headers)).status_code == 204
    # The revoked-set entry lost (a cache restart, an eviction): the session's row still says so.
    await state.cache.delete(revoked_key(uuid.UUID(ann.session_id)))
    await _refused_everywhere(instances, ann, "session_revoked")
    # And with every stamp lost too: an absent stamp matches no cached principal.
    await state.cache.delete(user_stamp_key(ann.user.id))
    await _refused_everywhere(instances, ann, "session_revoked")


async def test_a_role_change_applies_to_the_next_request_on_every_instance(
    client, factory, instances
):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    viewer = await factory.user(tenant, role=Role.VIEWER)
    await _warm(instances, viewer)
    for http in instances:
        listing = await http.get("/api/tenant/users", headers=viewer.headers)
        assert listing.status_code == 403

    async def set_role(role: Role) -> None:
        response = await client.put(
            f"/api/tenant/users/{viewer.id}", json={"role": role.value}, headers=admin.headers
        )
        assert response.status_code == 200, response.text

    await set_role(Role.MODERATOR)
    for http in instances:
        assert (await _me(http, viewer)).json()["role"] == "moderator"
        assert (await http.get("/api/tenant/users", headers=viewer.headers)).status_code == 200

    await set_role(Role.VIEWER)
    for http in instances:
        assert (await http.get("/api/tenant/users", headers=viewer.headers)).status_code == 403
        assert (await _me(http, viewer)).json()["role"] == "viewer"


async def test_a_disabled_account_is_refused_at_once_on_every_instance(client, factory, instances):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    viewer = await factory.user(tenant)
    await _warm(instances, viewer)
    response = await client.put(
        f"/api/tenant/users/{viewer.id}", json={"is_active": False}, headers=admin.headers
    )
    assert response.status_code == 200
    for http in instances:
        assert (await _me(http, viewer)).status_code == 401


async def _set_active(state, tenant: Tenant, active: bool) -> None:
    async with state.db.transaction() as session:
        row = await tenants.get_tenant(session, tenant.id)
        assert row is not None
        assert await tenants.set_active(state, session, None, row, active)


async def test_a_deactivated_tenant_is_refused_at_once_on_every_instance(factory, state, instances):
    tenant = await factory.tenant()
    ann = await factory.user(tenant, role=Role.ADMIN)
    bob = await factory.user(tenant)
    await _warm(instances, ann, bob)
    await _set_active(state, tenant, False)
    for account in (ann, bob):
        await _refused_everywhere(instances, account, "tenant_inactive")
    await _set_active(state, tenant, True)
    await _warm(instances, ann, bob)


async def test_a_password_change_ends_the_other_sessions_on_every_instance(
    client, factory, instances
):
    ann = await factory.user(await factory.tenant())
    phone = await _second_session(factory, ann)
    await _warm(instances, ann, phone)
    changed = await client.post(
        "/api/auth/password",
        json={"current_password": ann.password, "new_password": NEW_PASSWORD},
        headers=ann.headers,
    )
    assert changed.status_code == 204, changed.text
    await _refused_everywhere(instances, phone, "session_revoked")
    for http in instances:
        assert (await _me(http, ann)).status_code == 200


async def test_a_profile_change_is_seen_by_the_next_request_on_every_instance(
    client, factory, instances
):
    ann = await factory.user(await factory.tenant())
    await _warm(instances, ann)
    response = await client.put(
        f"/api/users/{ann.id}", json={"display_name": "Ann Renamed"}, headers=ann.headers
    )
    assert response.status_code == 200, response.text
    for http in instances:
        assert (await _me(http, ann)).json()["display_name"] == "Ann Renamed"


async def test_a_change_committed_outside_a_request_is_seen_at_once(factory, state, instances):
    """A job or the CLI changing a role directly in the database (ORM, own transaction)."""
    tenant = await factory.tenant()
    await factory.user(tenant, role=Role.ADMIN)
    viewer = await factory.user(tenant)
    await _warm(instances, viewer)
    async with state.db.transaction() as session:
        user = await session.get(type(viewer.user), viewer.user.id)
        assert user is not None
        user.role = Role.STREAMER.value
    for http in instances:
        assert (await _me(http, viewer)).json()["role"] == "streamer"


@pytest.mark.parametrize("settings_overrides", [{"auth_principal_ttl_seconds": 0}])
async def test_without_the_cache_every_request_reads_the_database(client, factory, state):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    viewer = await factory.user(tenant)
    assert (await _me(client, viewer)).json()["role"] == "viewer"
    response = await client.put(
        f"/api/tenant/users/{viewer.id}", json={"role": "moderator"}, headers=admin.headers
    )
    assert response.status_code == 200
    assert (await _me(client, viewer)).json()["role"] == "moderator"
    assert (await client.post("/api/auth/logout", headers=viewer.headers)).status_code == 204
    await _refused_everywhere([client], viewer, "session_revoked")
