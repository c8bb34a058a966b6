"""A stream key rotated while live: nginx-rtmp keeps naming the running publisher by the key it
published with, so that publisher's `on_update` and `publish_done` (recorded form bodies, the
real callback endpoint) still reach the event, and its `publish_done` marks it `reconnecting`;
nobody else gets anything out of the old key, and a new publish with it is refused."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from bigfootlive.models import Event
from tests.fixtures.recorded import payload

HOOK = "/api/streaming/hooks/nginx-rtmp"
FORM = {"content-type": "application/x-www-form-urlencoded"}


async def _call(studio, name, client_id, key) -> int:
    response = await studio.client.post(
        HOOK,
        content=payload("nginx_rtmp", name, client_id=client_id, stream_key=key),
        headers={**studio.hook_headers, **FORM},
    )
    return response.status_code


async def _rotate(studio, event) -> str:
    rotated = await studio.client.post(
        f"/api/events/{event['id']}/stream-key", headers=studio.streamer.headers
    )
    assert rotated.status_code == 200, rotated.text
    return str(rotated.json()["stream_key"])


async def _kept_hash(state, event) -> str | None:
    async with state.db.transaction() as session:
        stmt = select(Event.rotated_key_hash).where(Event.id == uuid.UUID(event["id"]))
        return (await session.execute(stmt)).scalar_one()


async def test_publish_done_with_the_old_key_marks_the_event_reconnecting(studio, state):
    event = await studio.event()
    old = event["ingest"]["stream_key"]
    assert await _call(studio, "publish.form", "3", old) == 302
    new = await _rotate(studio, event)
    assert await _kept_hash(state, event) is not None

    # the running publisher goes on (its on_update names the old key) ...
    assert await _call(studio, "update_publish.form", "3", old) == 200
    # ... nobody else: a new publish with the old key, another client's update or done
    assert await _call(studio, "publish.form", "4", old) == 403
    assert await _call(studio, "update_publish.form", "4", old) == 403
    await _call(studio, "publish_done.form", "4", old)
    assert await studio.status(event) == "live"

    # the running publisher leaves: its publish_done with the old key is the event's
    assert await _call(studio, "publish_done.form", "3", old) == 200
    assert await studio.status(event) == "reconnecting"
    assert await _kept_hash(state, event) is None  # kept for that publish only

    # the old key is now refused to everyone, the publisher that used it included
    assert await _call(studio, "publish.form", "3", old) == 403
    assert await _call(studio, "update_publish.form", "3", old) == 403
    assert await studio.status(event) == "reconnecting"
    assert await _call(studio, "publish.form", "5", new) == 302
    assert await studio.status(event) == "live"
    # a late repeat of the old publisher's done does not touch the new publish
    await _call(studio, "publish_done.form", "3", old)
    assert await _call(studio, "update_publish.form", "5", new) == 200
    assert await studio.status(event) == "live"


async def test_the_publishing_key_is_kept_over_several_rotations(studio):
    event = await studio.event()
    first = event["ingest"]["stream_key"]
    assert await _call(studio, "publish.form", "7", first) == 302
    second = await _rotate(studio, event)
    await _rotate(studio, event)
    # the key in between was never published with: nothing answers to it
    assert await _call(studio, "update_publish.form", "7", second) == 403
    assert await _call(studio, "update_publish.form", "7", first) == 200
    assert await _call(studio, "publish_done.form", "7", first) == 200
    assert await studio.status(event) == "reconnecting"


async def test_a_rotation_without_a_publisher_keeps_no_old_key(studio, state):
    event = await studio.event()
    old = event["ingest"]["stream_key"]
    new = await _rotate(studio, event)  # ready, nobody publishing
    assert await _kept_hash(state, event) is None
    assert await _call(studio, "publish.form", "3", old) == 403
    assert await _call(studio, "publish.form", "3", new) == 302
    await _call(studio, "publish_done.form", "3", old)
    assert await studio.status(event) == "live"


async def test_stopping_the_event_cuts_off_the_old_key_publisher(studio):
    event = await studio.event()
    old = event["ingest"]["stream_key"]
    assert await _call(studio, "publish.form", "3", old) == 302
    await _rotate(studio, event)
    stopped = await studio.client.post(
        f"/api/events/{event['id']}/stop", headers=studio.streamer.headers
    )
    assert stopped.status_code == 200, stopped.text
    assert await _call(studio, "update_publish.form", "3", old) == 403  # nginx drops it
    assert await studio.status(event) == "ended"
