"""An open socket does not outlive its session: revoked (sign-out, admin disable) -> 4401."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.realtime.conftest import create_event, join

# A heartbeat far longer than the tests wait: a close within them comes from the published
# revocation. SLOW_CHECK turns the publication off to see the heartbeat's own check.
QUICK = {"ws_batch_window_ms": 5, "presence_heartbeat_seconds": 0.3}
LONG_HEARTBEAT = {**QUICK, "ws_heartbeat_seconds": 60.0, "ws_idle_timeout_seconds": 600.0}
SHORT_HEARTBEAT = {**QUICK, "ws_heartbeat_seconds": 0.3, "ws_idle_timeout_seconds": 600.0}


async def still_open(viewer) -> bool:
    await viewer.send(type="ping", ref="alive?")
    return (await viewer.next("pong", ref="alive?"))["ref"] == "alive?"


def bearer(token: str) -> dict[str, Any]:
    return {"subprotocols": ["bigfootlive.v1", f"bearer.{token}"]}


@pytest.mark.parametrize("settings_overrides", [LONG_HEARTBEAT])
async def test_sign_out_closes_that_sessions_sockets_at_once(client, world, live_server, factory):
    event = await create_event(client, world["owner"])
    url = live_server.url(event["id"])
    viewer = world["viewer"]
    first_token = viewer.access_token
    await factory.login(viewer)  # a second session of the same user (say, on a phone)
    signed_out = [await join(url, None, **bearer(first_token)) for _ in range(2)]
    other_session = await join(url, viewer)
    bystander = await join(url, world["viewer2"])

    response = await client.post(
        "/api/auth/logout", headers={"Authorization": f"Bearer {first_token}"}
    )
    assert response.status_code == 204
    for socket in signed_out:
        assert await socket.closed_with(within=3.0) == 4401
    assert await still_open(other_session)
    assert await still_open(bystander)


@pytest.mark.parametrize("settings_overrides", [LONG_HEARTBEAT])
async def test_disabling_a_user_closes_their_sockets_at_once(client, world, live_server):
    event = await create_event(client, world["owner"])
    url = live_server.url(event["id"])
    viewer = await join(url, world["viewer"])
    bystander = await join(url, world["viewer2"])

    response = await client.put(
        f"/api/tenant/users/{world['viewer'].id}",
        json={"is_active": False},
        headers=world["admin"].headers,
    )
    assert response.status_code == 200, response.text
    assert await viewer.closed_with(within=3.0) == 4401
    assert await still_open(bystander)


@pytest.mark.parametrize("settings_overrides", [SHORT_HEARTBEAT])
async def test_heartbeat_closes_a_socket_whose_revocation_was_not_heard(
    client, world, live_server, state
):
    event = await create_event(client, world["owner"])
    url = live_server.url(event["id"])
    viewer = await join(url, world["viewer"])
    bystander = await join(url, world["viewer2"])

    # Into the revoked set only, with no publication (as if it were lost).
    await state.revoked.revoke(uuid.UUID(world["viewer"].session_id))
    assert await viewer.closed_with(within=3.0) == 4401
    await asyncio.sleep(0.7)  # two more heartbeats
    assert await still_open(bystander)
