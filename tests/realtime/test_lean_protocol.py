"""What an open viewer socket keeps (serving.LeanWebSocketProtocol, docs/realtime.md "Memory per
viewer"), and the light inbox and writable flag it uses in place of asyncio's Queue and Event."""

from __future__ import annotations

import asyncio
import gc
import uuid
import weakref

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bigfootlive.realtime.connection import DirectSockets
from bigfootlive.serving import LeanWebSocketProtocol, _Inbox, _Writable
from tests.fixtures.polling import until
from tests.realtime.conftest import create_event, join


async def test_an_open_socket_keeps_no_handshake_and_skips_the_http_stack(
    client, world, live_server, state
):
    event = await create_event(client, world["owner"])
    viewer = await join(live_server.url(event["id"]))
    room = state.hub.rooms[uuid.UUID(event["id"])]
    (connection,) = room.connections.values()
    assert connection.transport is not None  # the fast path: frames written to the transport
    protocol = connection.transport.get_protocol()
    assert isinstance(protocol, LeanWebSocketProtocol)
    assert protocol.request is None
    assert protocol.response is None
    assert protocol.scope["headers"] == []
    assert isinstance(protocol.app, DirectSockets)  # handed over without FastAPI's frames
    # and the socket works as before: a ping is answered
    await viewer.send(type="ping", ref="p1")
    assert (await viewer.next("pong"))["ref"] == "p1"


async def test_an_upgraded_socket_leaves_no_garbage_for_the_collector(
    client, world, live_server, state
):
    # The HTTP protocol that read the handshake is freed as soon as the WebSocket protocol
    # takes the transport over, without waiting for a collection (serving.LeanHttpToolsProtocol).
    event = await create_event(client, world["owner"])
    gc.collect()
    gc.disable()
    try:
        await join(live_server.url(event["id"]))
        room = state.hub.rooms[uuid.UUID(event["id"])]
        (connection,) = room.connections.values()
        left = [
            o
            for o in gc.get_objects()
            if isinstance(o, HttpToolsProtocol) and o.transport is connection.transport
        ]
    finally:
        gc.enable()
    assert left == []


async def test_a_closed_socket_is_freed_without_the_collector(client, world, live_server, state):
    # Once its viewer leaves, a socket (protocol, parser, transport, gateway) is freed by
    # reference counting. Two cycles kept each closed socket for a collection of an older
    # generation, rare with app.GC_THRESHOLDS: the gateway and its connection's closer (a
    # method of the gateway), and the protocol and its scope's raw send (a method of the
    # protocol). bench_fanout: 82 MB of 706 at 20k viewers after 16k had come and gone.
    event = await create_event(client, world["owner"])
    gc.collect()
    gc.disable()
    try:
        viewer = await join(live_server.url(event["id"]))
        room = state.hub.rooms[uuid.UUID(event["id"])]
        (connection,) = room.connections.values()
        assert connection.transport is not None
        protocol = weakref.ref(connection.transport.get_protocol())
        del connection, room
        await viewer.close()
        await until(lambda: protocol() is None, within=5)
    finally:
        gc.enable()


async def test_the_inbox_keeps_order_and_loses_nothing_to_a_cancelled_reader():
    inbox = _Inbox()
    reader = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    reader.cancel()
    inbox.put_nowait({"n": 1})
    inbox.put_nowait({"n": 2})
    assert not inbox.empty()
    assert await inbox.get() == {"n": 1}
    assert await inbox.get() == {"n": 2}
    assert inbox.empty()
    waiting = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    inbox.put_nowait({"n": 3})
    assert await asyncio.wait_for(waiting, 1) == {"n": 3}


async def test_writers_wait_while_the_transport_is_full():
    writable = _Writable()
    assert await writable.wait()
    writable.clear()
    writers = [asyncio.create_task(writable.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in writers)
    writable.set()
    assert await asyncio.wait_for(asyncio.gather(*writers), 1) == [True, True, True]
    assert writable.is_set()
