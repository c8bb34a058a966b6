"""Event analytics (figures and CSV) belong to the event's tenant: others get 404."""

from __future__ import annotations

from bigfootlive.authz.roles import Role
from tests.analytics.conftest import live_event


async def test_another_tenants_event_analytics_are_not_found(factory, client, state):
    tenant, streamer, event_id = await live_event(factory, client, state, visibility="public")
    outsider_admin = await factory.user(await factory.tenant(), role=Role.ADMIN)
    viewer = await factory.user(tenant)
    for path in (
        f"/api/analytics/events/{event_id}",
        f"/api/analytics/events/{event_id}/timeline.csv",
    ):
        assert (await client.get(path, headers=streamer.headers)).status_code == 200, path
        refused = await client.get(path, headers=outsider_admin.headers)
        assert refused.status_code == 404, path
        assert refused.json()["error"]["code"] == "event_not_found"
        assert (await client.get(path, headers=viewer.headers)).status_code == 403, path
    dashboard = await client.get("/api/analytics/dashboard", headers=outsider_admin.headers)
    assert dashboard.json()["events"] == []
