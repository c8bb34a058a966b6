"""Anonymous viewers are admitted from the process's event snapshot (realtime/admission.py):
one database load for a crowd, and every change that matters is seen by the next viewer."""

from __future__ import annotations

import asyncio
import uuid

from bigfootlive.tenants import service as tenants
from tests.fixtures.polling import until
from tests.realtime.conftest import connect, create_event, join


async def _warm(state, url: str, event_id: uuid.UUID) -> None:
    """A viewer that keeps the room open, and one more so that the snapshot is kept."""
    await join(url)
    await join(url)
    assert state.hub.admissions.holds(event_id)


async def test_a_crowd_of_anonymous_viewers_costs_one_load(client, world, live_server, state):
    event = await create_event(client, world["owner"])
    url = live_server.url(event["id"])
    await join(url)  # opens the room: what was loaded before its subscription is dropped
    loads = state.hub.admissions.loads
    viewers = await asyncio.gather(*(join(url) for _ in range(30)))
    assert len(viewers) == 30
    assert state.hub.admissions.loads - loads <= 1


async def test_an_event_made_private_refuses_the_next_anonymous_viewer(
    client, world, live_server, state
):
    event = await create_event(client, world["owner"])
    event_id, url = uuid.UUID(event["id"]), live_server.url(event["id"])
    await _warm(state, url, event_id)
    response = await client.put(
        f"/api/events/{event_id}", json={"visibility": "private"}, headers=world["owner"].headers
    )
    assert response.status_code == 200, response.text
    await until(lambda: not state.hub.admissions.holds(event_id))
    # not public any more: an anonymous socket must identify itself, and does not
    assert await (await connect(url)).closed_with() == 4408


async def test_room_settings_changed_show_in_the_next_welcome(client, world, live_server, state):
    event = await create_event(client, world["owner"])
    event_id, url = uuid.UUID(event["id"]), live_server.url(event["id"])
    await _warm(state, url, event_id)
    moderator = await join(url, world["moderator"])
    assert (await moderator.request(type="slow_mode", seconds=30))["type"] == "ack"
    await until(lambda: not state.hub.admissions.holds(event_id))
    viewer = await connect(url)
    welcome = await viewer.next("welcome")
    assert welcome["room"]["slow_mode_seconds"] == 30


async def test_a_deactivated_tenants_event_refuses_anonymous_viewers(
    client, world, live_server, state
):
    event = await create_event(client, world["owner"])
    event_id, url = uuid.UUID(event["id"]), live_server.url(event["id"])
    await _warm(state, url, event_id)
    async with state.db.transaction() as session:
        tenant = await tenants.get_tenant(session, world["tenant"].id)
        assert tenant is not None
        await tenants.set_active(state, session, None, tenant, False)
    await until(lambda: not state.hub.admissions.holds(event_id))
    assert await (await connect(url)).closed_with() == 4404

    async with state.db.transaction() as session:
        tenant = await tenants.get_tenant(session, world["tenant"].id)
        assert tenant is not None
        await tenants.set_active(state, session, None, tenant, True)
    await until(lambda: not state.hub.admissions.holds(event_id))
    await join(url)  # reactivated: admitted again


async def test_the_snapshot_goes_with_the_last_local_viewer(client, world, live_server, state):
    event = await create_event(client, world["owner"])
    event_id, url = uuid.UUID(event["id"]), live_server.url(event["id"])
    first = await join(url)
    second = await join(url)
    assert state.hub.admissions.holds(event_id)
    await first.close()
    await second.close()
    # no room, so no subscription would tell it of a change: it is not kept
    await until(lambda: event_id not in state.hub.rooms)
    assert not state.hub.admissions.holds(event_id)


async def test_an_ended_event_refuses_the_next_anonymous_viewer(client, world, live_server, state):
    event = await create_event(client, world["owner"])
    event_id, url = uuid.UUID(event["id"]), live_server.url(event["id"])
    await _warm(state, url, event_id)
    headers = world["owner"].headers
    response = await client.post(f"/api/events/{event_id}/start", headers=headers)
    assert response.status_code == 200, response.text
    response = await client.post(f"/api/events/{event_id}/stop", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ended"
    await until(lambda: not state.hub.admissions.holds(event_id))
    # nothing more to watch: refused at once (4411), not admitted from the old snapshot
    assert await (await connect(url)).closed_with() == 4411
    # a signed-in viewer still opens it (a moderator may still moderate its chat history)
    welcome = await (await connect(url, world["viewer"])).next("welcome")
    assert welcome["event_status"] == "ended"


async def test_a_revoked_session_is_refused_at_once_on_its_next_socket(client, world, live_server):
    event = await create_event(client, world["owner"])
    url = live_server.url(event["id"])
    first = await join(url, world["viewer"])  # the session is known and its principal cached
    response = await client.post("/api/auth/logout", headers=world["viewer"].headers)
    assert response.status_code in (200, 204), response.text
    # the very next socket with the same token is refused: no cache lets it in
    assert await (await connect(url, world["viewer"])).closed_with() == 4401
    assert await first.closed_with() == 4401
