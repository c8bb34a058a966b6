"""Followers connected to any event's socket hear at once when a followed streamer goes live."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from bigfootlive.authz.roles import Role
from tests.analytics.conftest import live_event
from tests.realtime.conftest import Client, join


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "ws_batch_window_ms": 5,
        "presence_heartbeat_seconds": 0.3,
        "jobs_inprocess_worker": True,
        "jobs_scheduler": False,
    }


async def notifications_within(viewer: Client, seconds: float) -> list[dict[str, Any]]:
    """Every notification the viewer receives in the next `seconds` (and any already seen)."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                viewer.seen.extend(json.loads(await viewer.ws.recv()))
    except TimeoutError:
        pass
    return [m for m in viewer.seen if m["type"] == "notification"]


async def test_connected_followers_are_notified_when_the_streamer_goes_live(
    factory, client, state, live_server
):
    tenant = await factory.tenant()
    fan = await factory.user(tenant)
    opted_out = await factory.user(tenant)
    stranger = await factory.user(tenant)
    quiet = await client.put(
        "/api/notifications/preferences",
        json={"realtime_event_live": False},
        headers=opted_out.headers,
    )
    assert quiet.status_code == 200
    # Everyone watches some other streamer's live event; the fan on two sockets.
    _, _, watching = await live_event(factory, client, state, tenant=tenant)
    url = live_server.url(watching)
    fan_sockets = [await join(url, fan), await join(url, fan)]
    others = [await join(url, opted_out), await join(url, stranger), await join(url)]

    async def followed_by_fan_and_opted_out(streamer_id: str) -> None:
        for account in (fan, opted_out):
            response = await client.post(
                f"/api/users/{streamer_id}/follow", headers=account.headers
            )
            assert response.status_code == 200, response.text

    _, streamer, event_id = await live_event(
        factory, client, state, tenant=tenant, before_live=followed_by_fan_and_opted_out
    )

    for socket in fan_sockets:
        note = await socket.next("notification")
        assert note == {
            "type": "notification",
            "kind": "event.live",
            "event_id": event_id,
            "owner": streamer.user.display_name,
            "title": "Launch day",
            "watch_url": note["watch_url"],
        }
    for viewer in others:
        assert await notifications_within(viewer, 0.5) == []


async def test_user_channel_is_subscribed_while_the_user_has_a_socket(
    factory, client, state, live_server
):
    tenant = await factory.tenant()
    fan = await factory.user(tenant, role=Role.VIEWER)
    _, _, watching = await live_event(factory, client, state, tenant=tenant)
    url = live_server.url(watching)
    fan_id = uuid.UUID(fan.id)

    first, second = await join(url, fan), await join(url, fan)
    assert set(state.hub.users[fan_id].sessions.values()) == {uuid.UUID(fan.session_id)}
    await first.close()
    await asyncio.sleep(0.2)
    assert len(state.hub.users[fan_id].sessions) == 1
    await second.close()
    for _ in range(50):
        if fan_id not in state.hub.users:
            break
        await asyncio.sleep(0.05)
    assert fan_id not in state.hub.users

    # Unsubscribed: a message for the user now reaches nobody, and a new socket hears the next.
    from bigfootlive.notifications import service as notifications
    from bigfootlive.notifications.wire import user_channel

    message = notifications.live_message(str(uuid.uuid4()), "Someone", "Gone", None)
    await state.pubsub.publish(user_channel(fan_id), message)
    again = await join(url, fan)
    await state.pubsub.publish(user_channel(fan_id), message)
    assert len(await notifications_within(again, 0.5)) == 1


async def test_anonymous_viewer_who_signs_in_on_the_socket_gets_notifications(
    factory, client, state, live_server
):
    tenant = await factory.tenant()
    fan = await factory.user(tenant)
    _, _, watching = await live_event(factory, client, state, tenant=tenant)
    viewer = await join(live_server.url(watching))
    assert (await viewer.request(type="auth", token=fan.access_token))["type"] == "ack"

    from bigfootlive.notifications import service as notifications
    from bigfootlive.notifications.wire import user_channel

    event_id = str(uuid.uuid4())
    await state.pubsub.publish(
        user_channel(fan.id), notifications.live_message(event_id, "Someone", "Later", None)
    )
    assert (await viewer.next("notification"))["event_id"] == event_id
