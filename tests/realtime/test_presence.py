"""Presence counts, reactions aggregated per second, and system messages on stream changes."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from bigfootlive.events import access, lifecycle
from tests.fixtures.jobs import settled
from tests.realtime.conftest import REALTIME_SETTINGS, create_event, join


async def test_viewer_count_follows_joins_and_leaves(client, world, live_server):
    event = await create_event(client, world["owner"])
    url = live_server.url(event["id"])
    first = await join(url, world["viewer"])
    second = await join(url)
    presence = await first.next("presence", viewers=2)
    assert presence["unique_viewers"] == 2
    await second.close()
    await first.next("presence", viewers=1)
    response = await client.get(f"/api/events/{event['id']}/presence")
    assert response.json() == {"viewers": 1, "unique_viewers": 2}


async def test_the_streamer_in_their_own_room_is_not_a_viewer(client, world, live_server):
    event = await create_event(client, world["owner"])
    url = live_server.url(event["id"])
    studio = await join(url, world["owner"])  # the studio's chat panel
    viewer = await join(url, world["viewer"])
    presence = await studio.next("presence", viewers=1)
    assert presence["unique_viewers"] == 1
    await viewer.close()
    await studio.next("presence", viewers=0)
    response = await client.get(f"/api/events/{event['id']}/presence")
    assert response.json() == {"viewers": 0, "unique_viewers": 1}


async def test_reactions_are_aggregated_per_second(client, world, live_server):
    event = await create_event(client, world["owner"])
    url = live_server.url(event["id"])
    a = await join(url, world["viewer"])
    b = await join(url, world["viewer2"])
    for _ in range(3):
        await a.send(type="react", kind="heart")
    await b.send(type="react", kind="heart")
    await b.send(type="react", kind="fire")
    totals: dict[str, int] = {}
    async with asyncio.timeout(5):
        while totals != {"heart": 4, "fire": 1}:
            message = await a.next("reactions")
            for kind, n in message["counts"].items():
                totals[kind] = totals.get(kind, 0) + n


async def test_reactions_beyond_the_per_second_limit_are_refused(client, world, live_server, state):
    event = await create_event(client, world["owner"])
    viewer = await join(live_server.url(event["id"]), world["viewer"])
    # Sent back to back, replies read after: awaiting each reply let a loaded machine stretch
    # the burst past the one-second window, and the last reaction found a fresh window.
    refs = [f"burst-{n}" for n in range(state.settings.reactions_per_second + 1)]
    for ref in refs:
        await viewer.send(type="react", kind="clap", ref=ref)
    replies = [await viewer.next("ack", ref=ref) for ref in refs[:-1]]
    assert len(replies) == state.settings.reactions_per_second
    refused = await viewer.next("error", ref=refs[-1])
    assert refused["code"] == "rate_limited"


async def test_stream_state_changes_become_system_messages(client, world, live_server, state):
    event = await create_event(client, world["owner"])
    viewer = await join(live_server.url(event["id"]))
    response = await client.post(f"/api/events/{event['id']}/start", headers=world["owner"].headers)
    assert response.status_code == 200, response.text
    event_id = uuid.UUID(event["id"])
    async with state.db.transaction() as session:
        row = await access.get_event(session, world["tenant"].id, event_id)
        await lifecycle.publisher_connected(state, session, row, "encoder-1")
    assert (await viewer.next("system"))["kind"] == "stream_live"
    async with state.db.transaction() as session:
        row = await access.get_event(session, world["tenant"].id, event_id)
        await lifecycle.publisher_disconnected(state, session, row, "encoder-1")
    assert (await viewer.next("system"))["kind"] == "stream_reconnecting"
    async with state.db.transaction() as session:
        row = await access.get_event(session, world["tenant"].id, event_id)
        await lifecycle.publisher_connected(state, session, row, "encoder-1")
    assert (await viewer.next("system"))["kind"] == "stream_resumed"
    response = await client.post(f"/api/events/{event['id']}/stop", headers=world["owner"].headers)
    assert response.status_code == 200, response.text
    assert (await viewer.next("system"))["kind"] == "stream_ended"


@pytest.mark.parametrize(
    "settings_overrides",
    [{**REALTIME_SETTINGS, "jobs_inprocess_worker": True, "analytics_flush_seconds": 0.2}],
)
async def test_chat_and_reactions_count_once_in_the_event_analytics(
    client, world, live_server, state
):
    owner = world["owner"]
    event = await create_event(client, owner)
    viewer = await join(live_server.url(event["id"]), world["viewer"])
    for n in range(3):
        await viewer.send(type="send", body=f"hello {n}", ref=str(n))
        await viewer.next("ack", ref=str(n))
    for kind in ("heart", "fire"):
        await viewer.send(type="react", kind=kind)
    await viewer.send(type="send", body="x" * 10_000, ref="long")
    await viewer.next("error", ref="long")  # refused: not stored, not counted

    async def figures() -> dict[str, Any]:
        response = await client.get(f"/api/analytics/events/{event['id']}", headers=owner.headers)
        assert response.status_code == 200, response.text
        return response.json()

    counts = (0, 0)
    for _ in range(50):  # the buffer is flushed every ANALYTICS_FLUSH_SECONDS
        latest = await figures()
        counts = (latest["chat"]["messages"], latest["reactions"])
        if counts == (3, 2):
            break
        await asyncio.sleep(0.2)
    assert counts == (3, 2)
    await state.beacons.flush()  # later flushes add nothing
    await settled(state.jobs)
    again = await figures()
    assert (again["chat"]["messages"], again["reactions"]) == (3, 2)
