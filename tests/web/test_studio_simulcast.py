"""The studio's simulcast panel in process, on both backends: each destination with the state
and reason its container records, the key only masked; not found for another tenant."""

from __future__ import annotations

import uuid

import httpx

from bigfootlive.authz.roles import Role
from bigfootlive.db import utcnow
from bigfootlive.events import simulcast
from bigfootlive.events.simulcast_schemas import DestinationState
from tests.fixtures.factories import Factory
from tests.web import helpers
from tests.web.test_pages import HTML, _signin

HX = {"hx-request": "true"}
KEY = "live_9f8e7d6c5b4a-secret"


async def test_the_panel_shows_each_destinations_state_and_reason(
    client: httpx.AsyncClient, factory: Factory, state
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Everywhere")
    await _signin(client, tenant.slug, streamer.user.email)
    empty = await client.get(f"/studio/events/{show['id']}/simulcast", headers=HX)
    assert empty.status_code == 200
    assert "No simulcast destination" in empty.text
    added = await client.post(
        f"/api/events/{show['id']}/simulcast",
        json={"platform": "twitch", "name": "Twitch", "stream_key": KEY},
        headers=streamer.headers,
    )
    assert added.status_code == 201, added.text
    destination = added.json()
    async with state.db.transaction() as session:  # what the event's container records
        await simulcast.set_state(
            session, tenant.id, uuid.UUID(destination["id"]), DestinationState.FAILED,
            reason="Server error: Already publishing", attempts=3, at=utcnow(),
        )  # fmt: skip
    panel = await client.get(f"/studio/events/{show['id']}/simulcast", headers=HX)
    assert panel.status_code == 200
    row = panel.text.split(f'id="simulcast-{destination["id"]}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-state="failed"' in row
    assert "Server error: Already publishing" in row
    assert "<td>3</td>" in row
    assert destination["stream_key_hint"] in row
    assert KEY not in panel.text
    page = await client.get(f"/studio/events/{show['id']}", headers=HTML)
    assert f'hx-get="/studio/events/{show["id"]}/simulcast"' in page.text


async def test_another_tenants_streamer_gets_not_found(client: httpx.AsyncClient, factory: Factory):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Mine")
    other = await factory.tenant()
    stranger = await factory.user(other, role=Role.STREAMER)
    await _signin(client, other.slug, stranger.user.email)
    hidden = await client.get(f"/studio/events/{show['id']}/simulcast", headers=HX)
    assert hidden.status_code == 404
