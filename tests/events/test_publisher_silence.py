"""PUBLISHER_SILENCE_SECONDS: a live event whose media server stopped vouching for its publisher
(no publish or publisher-alive callback within the silence) goes `reconnecting`, once, even
with several sweeping processes; a publisher heard of recently keeps it live."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import update

from bigfootlive.authz.scoping import platform_scope
from bigfootlive.db import utcnow
from bigfootlive.events import silence
from bigfootlive.models import Event
from tests.events.test_lifecycle import _create, _event, _publish, _streamer


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"publisher_silence_seconds": 30}


async def _live_for_a_while(state, body) -> None:
    """The event went live a minute ago (longer than the silence)."""
    with platform_scope("test: backdate went_live_at"):
        async with state.db.transaction() as session:
            await session.execute(
                update(Event)
                .where(Event.id == uuid.UUID(body["id"]))
                .values(went_live_at=utcnow() - dt.timedelta(minutes=1))
            )


async def test_a_silent_publisher_moves_its_live_event_to_reconnecting_once(factory, client, state):
    streamer = await _streamer(factory)
    body = await _create(client, streamer)
    assert (await client.post(f"/api/events/{body['id']}/start", headers=streamer.headers)).json()
    event_id = uuid.UUID(body["id"])
    await silence.heard_from_publisher(state, state.cache, event_id)  # the publish callback
    await _publish(state, body)
    await _live_for_a_while(state, body)

    with platform_scope("test: sweep"):
        assert await silence.mark_silent_publishers(state) == []  # heard of: stays live
        assert (await _event(state, body)).status == "live"

        await state.cache.delete(silence.alive_key(event_id))  # the silence ran out
        moved = await silence.mark_silent_publishers(state)
        assert [e.id for e in moved] == [event_id]
        assert await silence.mark_silent_publishers(state) == []  # once
    event = await _event(state, body)
    assert event.status == "reconnecting"
    assert event.publisher_id is None
    assert event.disconnected_at is not None

    back = await _publish(state, body, publisher="client-2")  # the encoder publishes again
    assert back.status == "live"
