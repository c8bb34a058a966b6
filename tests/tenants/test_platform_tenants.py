"""The platform API to deactivate and activate a tenant: platform admins only, audited, and a
deactivated tenant's sessions (API tokens and the web app's cookie session) stop at once."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from bigfootlive.authz.roles import Role
from bigfootlive.models import AuditRecord
from tests.fixtures.factories import Account, Factory
from tests.web.test_pages import HTML, _signin


async def _post(client: httpx.AsyncClient, who: Account, tenant_id: object, what: str):
    return await client.post(f"/api/platform/tenants/{tenant_id}/{what}", headers=who.headers)


async def test_a_platform_admin_deactivates_a_tenant_and_its_sessions_stop(
    client: httpx.AsyncClient, factory: Factory, state
):
    root = await factory.user(await factory.tenant(), platform_admin=True)
    tenant = await factory.tenant()
    member = await factory.user(tenant, role=Role.ADMIN)
    await _signin(client, tenant.slug, member.user.email)  # a web app session (cookies)
    assert "Signed in as" in (await client.get("/", headers=HTML)).text
    assert (await client.get("/api/auth/me", headers=member.headers)).status_code == 200

    response = await _post(client, root, tenant.id, "deactivate")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": str(tenant.id),
        "slug": tenant.slug,
        "name": tenant.name,
        "is_active": False,
        "changed": True,
    }
    # The member's very next request is refused, with the token, the refresh and the cookie.
    me = await client.get("/api/auth/me", headers=member.headers)
    assert me.status_code == 401
    assert me.json()["error"]["code"] == "tenant_inactive"
    refresh = await client.post("/api/auth/refresh", json={"refresh_token": member.refresh_token})
    assert refresh.status_code == 401
    assert "Signed in as" not in (await client.get("/", headers=HTML)).text

    again = await _post(client, root, tenant.id, "deactivate")
    assert again.status_code == 200
    assert again.json()["changed"] is False

    restored = await _post(client, root, tenant.id, "activate")
    assert restored.status_code == 200
    assert restored.json()["is_active"] is True
    assert (await client.get("/api/auth/me", headers=member.headers)).status_code == 200

    async with state.db.transaction() as session:
        records = (
            await session.execute(
                select(AuditRecord.action, AuditRecord.actor_id, AuditRecord.tenant_id)
                .where(AuditRecord.target_id == str(tenant.id))
                .order_by(AuditRecord.created_at)
            )
        ).all()
    assert [tuple(r) for r in records] == [
        ("tenant.deactivate", root.user.id, tenant.id),
        ("tenant.activate", root.user.id, tenant.id),
    ]


async def test_only_platform_admins_may(client: httpx.AsyncClient, factory: Factory):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    for what in ("deactivate", "activate"):
        response = await _post(client, admin, tenant.id, what)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "platform_admin_required"
    assert (await client.get("/api/auth/me", headers=admin.headers)).status_code == 200
    anonymous = await client.post(f"/api/platform/tenants/{tenant.id}/deactivate")
    assert anonymous.status_code == 401


async def test_unknown_and_malformed_tenant_ids(client: httpx.AsyncClient, factory: Factory):
    root = await factory.user(await factory.tenant(), platform_admin=True)
    missing = await _post(client, root, uuid.uuid4(), "deactivate")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "tenant_not_found"
    malformed = await _post(client, root, "acme", "deactivate")
    assert malformed.status_code == 422
    assert malformed.json()["error"]["code"]
