from __future__ import annotations

import uuid
from typing import Any

import pytest

from bigfootlive.authz.roles import Role
from bigfootlive.events import access, lifecycle


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "jobs_inprocess_worker": True,
        "jobs_scheduler": False,
        "jobs_min_backoff_ms": 50,
        "jobs_max_backoff_ms": 200,
        "analytics_flush_seconds": 0.2,
        "analytics_beacon_rate_limit": "5/minute",
    }


async def live_event(
    factory, client, state, *, visibility: str = "public", tenant=None, before_live=None
):
    """A streamer's event, armed and on air (the media server's publish callback, simulated
    at the service, as the events tests do)."""
    tenant = tenant or await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    if before_live is not None:
        await before_live(streamer.id)
    created = await client.post(
        "/api/events",
        json={"title": "Launch day", "visibility": visibility},
        headers=streamer.headers,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    started = await client.post(f"/api/events/{body['id']}/start", headers=streamer.headers)
    assert started.status_code == 200, started.text
    async with state.db.transaction() as session:
        event = await access.get_event(session, tenant.id, uuid.UUID(body["id"]))
        await lifecycle.publisher_connected(state, session, event, "encoder-1")
    return tenant, streamer, body["id"]


async def end_event(client, streamer, event_id: str) -> None:
    response = await client.post(f"/api/events/{event_id}/stop", headers=streamer.headers)
    assert response.status_code == 200, response.text
