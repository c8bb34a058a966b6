"""A deactivated tenant's members, sessions and API keys are refused at once; platform admins
are not, and reactivating restores access."""

from __future__ import annotations

from sqlalchemy import select

from bigfootlive.authz.roles import Role
from bigfootlive.models import AuditRecord, Tenant
from bigfootlive.tenants import service as tenants


async def _set_active(state, tenant: Tenant, active: bool) -> None:
    async with state.db.transaction() as session:
        row = await tenants.get_tenant(session, tenant.id)
        assert row is not None
        assert await tenants.set_active(state, session, None, row, active)


async def _me(client, account):
    return await client.get("/api/auth/me", headers=account.headers)


async def test_access_tokens_stop_working_when_the_tenant_is_deactivated(client, factory, state):
    tenant = await factory.tenant()
    ann = await factory.user(tenant, role=Role.ADMIN)
    assert (await _me(client, ann)).status_code == 200

    await _set_active(state, tenant, False)
    refused = await _me(client, ann)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "tenant_inactive"
    info = await client.get("/api/tenant/info", headers=ann.headers)
    assert info.status_code == 401

    await _set_active(state, tenant, True)
    assert (await _me(client, ann)).status_code == 200


async def test_refresh_is_refused_while_the_tenant_is_deactivated(client, factory, state):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    await _set_active(state, tenant, False)
    refused = await client.post("/api/auth/refresh", json={"refresh_token": ann.refresh_token})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "tenant_inactive"
    # The refused attempt did not use the token up: it works again after reactivation.
    await _set_active(state, tenant, True)
    again = await client.post("/api/auth/refresh", json={"refresh_token": ann.refresh_token})
    assert again.status_code == 200, again.text


async def test_login_is_refused_for_a_deactivated_tenant(client, factory, state):
    tenant = await factory.tenant()
    ann = await factory.user(tenant, login=False)
    await _set_active(state, tenant, False)
    response = await client.post(
        "/api/auth/login",
        json={"tenant": tenant.slug, "email": ann.user.email, "password": ann.password},
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"
    assert "access_token" not in response.text


async def test_api_keys_are_refused_at_once_when_the_tenant_is_deactivated(client, factory, state):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    created = await client.post("/api/api-keys", json={"name": "media"}, headers=admin.headers)
    assert created.status_code == 201, created.text
    hook = {"X-API-Key": created.json()["key"]}
    # Authenticated (and now cached): the empty callback itself is what is refused.
    before = await client.post("/api/streaming/hooks/srs", json={}, headers=hook)
    assert before.status_code == 400, before.text

    await _set_active(state, tenant, False)
    after = await client.post("/api/streaming/hooks/srs", json={}, headers=hook)
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "tenant_inactive"

    await _set_active(state, tenant, True)
    restored = await client.post("/api/streaming/hooks/srs", json={}, headers=hook)
    assert restored.status_code == 400


async def test_platform_admins_keep_working(client, factory, state):
    tenant = await factory.tenant()
    operator_home = await factory.tenant()
    root = await factory.user(operator_home, role=Role.ADMIN, platform_admin=True)
    resident_root = await factory.user(tenant, role=Role.ADMIN, platform_admin=True)
    member = await factory.user(tenant)

    await _set_active(state, tenant, False)
    assert (await _me(client, member)).status_code == 401
    assert (await _me(client, resident_root)).status_code == 200
    refreshed = await client.post(
        "/api/auth/refresh", json={"refresh_token": resident_root.refresh_token}
    )
    assert refreshed.status_code == 200
    stats = await client.get("/api/platform/stats", headers=root.headers)
    assert stats.status_code == 200, stats.text


async def test_other_tenants_are_unaffected(client, factory, state):
    tenant = await factory.tenant()
    other = await factory.user(await factory.tenant())
    await _set_active(state, tenant, False)
    assert (await _me(client, other)).status_code == 200


async def test_status_changes_are_audited_and_idempotent(factory, state):
    tenant = await factory.tenant()
    await _set_active(state, tenant, False)
    async with state.db.transaction() as session:
        row = await tenants.get_tenant(session, tenant.id)
        assert row is not None
        assert not row.is_active
        assert not await tenants.set_active(state, session, None, row, False)
        actions = (
            await session.execute(
                select(AuditRecord.action).where(AuditRecord.target_id == str(tenant.id))
            )
        ).scalars()
        assert list(actions) == ["tenant.deactivate"]
