"""Who may manage webhooks: tenant admins only, and only their own tenant's."""

from __future__ import annotations

import uuid

import pytest

from bigfootlive.authz.roles import Role
from tests.webhooks.test_webhooks import deliveries, make_endpoint, wait_for_requests


def _routes(endpoint_id: str, delivery_id: str) -> list[tuple[str, str, dict | None]]:
    return [
        (
            "POST",
            "/api/webhooks/endpoints",
            {"url": "https://x.example/h", "event_types": ["event.live"]},
        ),
        ("GET", "/api/webhooks/endpoints", None),
        ("GET", f"/api/webhooks/endpoints/{endpoint_id}", None),
        ("PATCH", f"/api/webhooks/endpoints/{endpoint_id}", {"is_active": False}),
        ("GET", f"/api/webhooks/endpoints/{endpoint_id}/deliveries", None),
        ("POST", f"/api/webhooks/endpoints/{endpoint_id}/rotate-secret", None),
        ("POST", f"/api/webhooks/deliveries/{delivery_id}/redeliver", None),
        ("DELETE", f"/api/webhooks/endpoints/{endpoint_id}", None),
    ]


@pytest.fixture
async def hooked(factory, client, receiver):
    """A tenant admin's endpoint with one delivered event."""
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    endpoint = await make_endpoint(client, admin, receiver.url, ["user.created"])
    await factory.user(tenant, login=False)
    await wait_for_requests(receiver, 1)
    [delivery] = await deliveries(client, admin, endpoint["id"])
    return tenant, admin, endpoint["id"], delivery["id"]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.STREAMER, Role.MODERATOR])
async def test_members_below_admin_cannot_touch_webhooks(factory, client, hooked, role):
    tenant, admin, endpoint_id, delivery_id = hooked
    member = await factory.user(tenant, role=role)
    for method, path, body in _routes(endpoint_id, delivery_id):
        response = await client.request(method, path, json=body, headers=member.headers)
        assert response.status_code == 403, (role, method, path)
        assert response.json()["error"]["code"] == "insufficient_role"
    still = await client.get(f"/api/webhooks/endpoints/{endpoint_id}", headers=admin.headers)
    assert still.json()["is_active"] is True


async def test_another_tenants_admin_gets_404_everywhere(factory, client, hooked):
    _, admin, endpoint_id, delivery_id = hooked
    outsider = await factory.user(await factory.tenant(), role=Role.ADMIN)
    for method, path, body in _routes(endpoint_id, delivery_id)[2:]:
        response = await client.request(method, path, json=body, headers=outsider.headers)
        assert response.status_code == 404, (method, path)
    listed = await client.get("/api/webhooks/endpoints", headers=outsider.headers)
    assert listed.json() == []
    unknown = await client.post(
        f"/api/webhooks/deliveries/{uuid.uuid4()}/redeliver", headers=admin.headers
    )
    assert unknown.status_code == 404
    shown = await client.get(f"/api/webhooks/endpoints/{endpoint_id}", headers=admin.headers)
    assert shown.status_code == 200
    assert shown.json()["is_active"] is True


async def test_anonymous_callers_are_401(client, hooked):
    _, _, endpoint_id, delivery_id = hooked
    for method, path, body in _routes(endpoint_id, delivery_id):
        response = await client.request(method, path, json=body)
        assert response.status_code == 401, (method, path)
