"""The gateway with real WebSocket clients on a real socket, on both backends."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import uuid

from tests.fixtures.polling import until
from tests.realtime.conftest import connect, create_event, join


async def test_viewers_receive_a_message_acknowledged_after_it_is_stored(
    client, world, live_server
):
    event = await create_event(client, world["owner"])
    url = live_server.url(event["id"])
    sender = await join(url, world["viewer"])
    watcher = await join(url, world["viewer2"])
    anonymous = await join(url)

    sent = await sender.say("hello everyone")

    history = await client.get(f"/api/events/{event['id']}/chat")
    assert [m["id"] for m in history.json()["items"]] == [sent["id"]]
    for viewer in (watcher, anonymous, sender):
        got = await viewer.next("message")
        assert got["message"]["body"] == "hello everyone"
        assert got["message"]["user_id"] == world["viewer"].id


async def test_anonymous_viewers_watch_public_events_but_cannot_send(client, world, live_server):
    event = await create_event(client, world["owner"])
    anonymous = await connect(live_server.url(event["id"]))
    welcome = await anonymous.next("welcome")
    assert welcome["read_only"] is True
    assert welcome["user"] is None

    reply = await anonymous.request(type="send", body="let me in")
    assert reply == {
        "type": "error",
        "ref": reply["ref"],
        "code": "read_only",
        "message": reply["message"],
        "details": {},
    }
    reply = await anonymous.request(type="react", kind="heart")
    assert reply["code"] == "read_only"
    history = await client.get(f"/api/events/{event['id']}/chat")
    assert history.json()["items"] == []


async def test_private_event_refuses_viewers_it_does_not_open(client, world, live_server):
    event = await create_event(client, world["owner"], visibility="private")
    url = live_server.url(event["id"])
    assert await (await connect(url, world["viewer"])).closed_with() == 4403
    assert await (await connect(url, world["outsider"])).closed_with() == 4404
    # anonymous: may still send an `auth` message; none comes, so the window closes
    assert await (await connect(url)).closed_with() == 4408
    moderator = await connect(url, world["moderator"])
    assert (await moderator.next("welcome"))["can_moderate"] is True


async def test_refusals_have_their_own_close_codes(client, world, live_server):
    missing = live_server.url(uuid.uuid4())
    assert await (await connect(missing, world["viewer"])).closed_with() == 4404
    assert await (await connect(live_server.url("not-a-uuid"))).closed_with() == 4404
    event = await create_event(client, world["owner"])
    url = live_server.url(event["id"])
    world["viewer"].access_token = "not.a.token"
    assert await (await connect(url, world["viewer"])).closed_with() == 4401
    old = await connect(url, None, subprotocols=["bigfootlive.v0"])
    assert await old.closed_with() == 4400


async def test_token_in_a_first_auth_message_opens_a_tenant_event(client, world, live_server):
    event = await create_event(client, world["owner"], visibility="tenant")
    viewer = await connect(live_server.url(event["id"]))
    await viewer.send(type="auth", token=world["viewer"].access_token)
    welcome = await viewer.next("welcome")
    assert welcome["user"]["id"] == world["viewer"].id
    assert (await viewer.say("authenticated by message"))["body"] == "authenticated by message"


async def test_revoked_session_is_refused(client, world, live_server):
    event = await create_event(client, world["owner"])
    response = await client.post("/api/auth/logout", headers=world["viewer"].headers)
    assert response.status_code in (200, 204), response.text
    viewer = await connect(live_server.url(event["id"]), world["viewer"])
    assert await viewer.closed_with() == 4401


async def test_malformed_frames_get_error_frames_and_the_connection_survives(
    client, world, live_server
):
    event = await create_event(client, world["owner"])
    viewer = await join(live_server.url(event["id"]), world["viewer"])
    await viewer.ws.send("{not json")
    assert (await viewer.next("error"))["code"] == "invalid_json"
    await viewer.ws.send(json.dumps({"type": "teleport"}))
    assert (await viewer.next("error"))["code"] == "bad_frame"
    await viewer.ws.send(json.dumps({"type": "send"}))
    assert (await viewer.next("error"))["code"] == "bad_frame"
    await viewer.ws.send(json.dumps([1, 2, 3]))
    assert (await viewer.next("error"))["code"] == "bad_frame"
    await viewer.ws.send(b"\xff\xfe binary")
    assert (await viewer.next("error"))["code"] in ("invalid_json", "bad_frame")
    await viewer.ws.send("x" * 20_000)
    assert (await viewer.next("error"))["code"] == "frame_too_large"
    reply = await viewer.request(type="send", body="   ")
    assert reply["code"] == "empty_message"
    assert (await viewer.say("still here"))["body"] == "still here"
    other = await join(live_server.url(event["id"]), world["viewer2"])
    await other.send(type="ping", ref="p")
    assert (await other.next("pong"))["ref"] == "p"


async def test_deeply_nested_frames_get_error_frames_and_the_connection_survives(
    client, world, live_server
):
    event = await create_event(client, world["owner"])
    viewer = await join(live_server.url(event["id"]), world["viewer"])
    depth = 8_000  # 16,000 bytes: under the frame limit, far over any nesting we accept
    for frame in (
        "[" * depth + "]" * depth,
        '{"a":' * 2_500 + "1" + "}" * 2_500,
        '{"type": "send", "body": ' + "[" * depth + "]" * depth + "}",
    ):
        await viewer.ws.send(frame)
        assert (await viewer.next("error"))["code"] in ("invalid_json", "bad_frame")
    assert (await viewer.say("still here"))["body"] == "still here"


async def test_a_deeply_nested_first_auth_frame_is_refused_with_a_close_code(
    client, world, live_server
):
    event = await create_event(client, world["owner"], visibility="tenant")
    anonymous = await connect(live_server.url(event["id"]))
    await anonymous.ws.send('{"type": "auth", "token": ' + "[" * 8_000 + "]" * 8_000 + "}")
    assert await anonymous.closed_with() == 4401


async def test_resume_replays_what_a_reconnecting_viewer_missed(client, world, live_server):
    event = await create_event(client, world["owner"])
    url = live_server.url(event["id"])
    talker = await join(url, world["viewer"])
    listener = await join(url, world["viewer2"])
    first = await talker.say("one")
    await listener.next("message")
    await listener.close()
    missed = [(await talker.say(text))["id"] for text in ("two", "three", "four")]

    back = await join(url, world["viewer2"])
    await back.send(type="resume", last_id=first["id"])
    history = await back.next("history")
    assert [m["id"] for m in history["messages"]] == missed
    assert history["complete"] is True


async def test_ping_gets_pong(client, world, live_server):
    event = await create_event(client, world["owner"])
    viewer = await join(live_server.url(event["id"]))
    await viewer.send(type="ping", ref="hb-1")
    assert (await viewer.next("pong"))["ref"] == "hb-1"


async def _stalled_viewer(port: int, event_id: str, token: str) -> asyncio.StreamWriter:
    """A viewer that completes the handshake, then never reads: a tiny receive buffer and an
    asyncio stream that stops reading once its own 64 KiB buffer is full."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ws/events/{event_id} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: bigfootlive.v1, bearer.{token}\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return writer


async def test_a_slow_consumer_is_cut_off_without_delaying_the_others(
    client, world, live_server, state
):
    from bigfootlive.realtime.protocol import chat_channel

    event = await create_event(client, world["owner"])
    event_id = uuid.UUID(event["id"])
    healthy = await join(live_server.url(event_id), world["viewer"], max_size=None)
    stalled = await _stalled_viewer(live_server.port, event["id"], world["viewer2"].access_token)
    try:
        await until(lambda: len(state.hub.rooms[event_id].connections) == 2)
        room = state.hub.rooms[event_id]
        slow = next(c for c in room.connections.values() if str(c.user_id) == world["viewer2"].id)
        kept = next(c for c in room.connections.values() if c is not slow)
        blob = json.dumps(
            {
                "type": "system",
                "kind": "stream_live",
                "text": "x" * 60_000,
                "at": "2026-01-01T00:00:00Z",
            }
        ).encode()
        received = sent = 0

        async def read() -> None:
            # A healthy viewer reads what comes as it comes (presence counts come too).
            nonlocal received
            while True:
                frame = json.loads(await healthy.ws.recv())
                received += sum(1 for m in frame if m["type"] == "system")

        async def publish_one() -> None:
            nonlocal sent
            await state.pubsub.publish(chat_channel(event_id), blob)
            sent += 1
            await until(lambda: received >= sent or reader.done(), every=0.002)

        reader = asyncio.create_task(read())
        try:
            # 60 KB frames, one at a time: the viewer that reads nothing fills its socket buffers
            # and is cut off (at most 24 MB); the healthy one gets every frame, and 20 more after.
            while slow.close_code is None and sent < 400:
                await publish_one()
            for _ in range(20):
                await publish_one()
            assert not reader.done(), f"the healthy viewer was cut off: {reader.exception()!r}"
        finally:
            reader.cancel()
        assert received == sent
        assert slow.close_code == 4409
        assert slow.id not in room.connections
        # On the fast path there is no queue at all: the bound is on the transport's buffer.
        assert slow._queue is None or slow._queue.qsize() <= state.settings.ws_send_queue_size
        assert kept.close_code is None
        assert kept.id in room.connections
    finally:
        stalled.transport.abort()
