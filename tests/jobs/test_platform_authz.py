"""Platform endpoints (jobs, platform analytics and stats) answer platform admins only."""

from __future__ import annotations

import uuid

from bigfootlive.authz.roles import Role

PLATFORM_ROUTES = [
    ("GET", "/api/platform/jobs/stats"),
    ("GET", "/api/platform/jobs/dead"),
    ("POST", f"/api/platform/jobs/dead/{uuid.uuid4()}/retry"),
    ("DELETE", f"/api/platform/jobs/dead/{uuid.uuid4()}"),
    ("GET", "/api/platform/stats"),
    ("GET", "/api/analytics/platform"),
]


async def test_tenant_admins_are_refused_platform_endpoints(factory, client):
    admin = await factory.user(await factory.tenant(), role=Role.ADMIN)
    for method, path in PLATFORM_ROUTES:
        response = await client.request(method, path, headers=admin.headers)
        assert response.status_code == 403, (method, path)
        assert response.json()["error"]["code"] == "platform_admin_required"


async def test_anonymous_callers_are_refused_platform_endpoints(client):
    for method, path in PLATFORM_ROUTES:
        assert (await client.request(method, path)).status_code == 401, (method, path)


async def test_platform_admins_reach_them(factory, client):
    root = await factory.user(await factory.tenant(), role=Role.VIEWER, platform_admin=True)
    for method, path in PLATFORM_ROUTES:
        response = await client.request(method, path, headers=root.headers)
        expected = 404 if "/dead/" in path else 200  # the dead-letter ids are made up
        assert response.status_code == expected, (method, path, response.text)
