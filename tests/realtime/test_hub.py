"""The hub's fan-out to many local viewers: in slices, in order, batched under load."""

from __future__ import annotations

import asyncio
import functools
import json
import time
import uuid

from bigfootlive.kit.backends import MemoryCache, MemoryPubSub
from bigfootlive.realtime import protocol as p
from bigfootlive.realtime.connection import Connection
from bigfootlive.realtime.hub import Hub
from tests.fixtures.polling import until

VIEWERS = 1300  # ten slices and a bit


class Socket(asyncio.WriteTransport):
    """The write side of a viewer's socket, kept in memory: what the hub wrote, frame by frame."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.frames.append(bytes(data))

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def messages(self) -> list[int]:
        """The `n` of every chat message received, in order (frames are unmasked text)."""
        out = []
        for frame in self.frames:
            length = frame[1] & 0x7F
            offset = 2 if length < 126 else 4 if length == 126 else 10
            out += [m["n"] for m in json.loads(frame[offset:])]
        return out


async def _room(viewers: int) -> tuple[Hub, uuid.UUID, list[Socket]]:
    hub = Hub(MemoryPubSub(), MemoryCache(), queue_size=64, batch_window=0, presence_interval=60)
    event_id = uuid.uuid4()
    sockets = []

    async def closer(code: int, reason: str) -> None:
        raise AssertionError(f"nobody is cut off here ({code} {reason})")

    async def sender(text: str) -> None:
        raise AssertionError("the fast path writes to the transport")

    for _ in range(viewers):
        socket = Socket()
        await hub.join(Connection(event_id, None, sender, closer, 64, transport=socket))
        sockets.append(socket)
    return hub, event_id, sockets


async def _publish(hub: Hub, event_id: uuid.UUID, n: int) -> None:
    await hub.pubsub.publish(p.chat_channel(event_id), json.dumps({"n": n}).encode())


async def test_a_large_broadcast_yields_to_the_event_loop_between_slices():
    hub, event_id, sockets = await _room(VIEWERS)
    await _publish(hub, event_id, 0)
    await asyncio.sleep(0)  # the flush runs: the first slice is written...
    reached = sum(1 for s in sockets if s.frames)
    assert 0 < reached < VIEWERS  # ...and other work gets the loop before the rest
    await until(lambda: all(s.frames for s in sockets), within=5, every=0)
    assert all(s.messages() == [0] for s in sockets)


async def test_messages_arriving_during_a_broadcast_follow_in_order_as_one_frame():
    hub, event_id, sockets = await _room(VIEWERS)
    await _publish(hub, event_id, 0)
    await asyncio.sleep(0)  # the first frame is on its way to the first slice
    for n in range(1, 30):
        await _publish(hub, event_id, n)
    await until(lambda: all(len(s.messages()) == 30 for s in sockets), within=5)
    for socket in sockets:
        assert socket.messages() == list(range(30))
        assert len(socket.frames) == 2  # the 29 that came during the first went out together


async def test_a_small_room_is_not_held_for_the_batch_window():
    # A window of 2 s: only what the room's broadcasts cost may space its frames out, and ten
    # sockets cost microseconds, so a message right after another goes out at once.
    hub, event_id, sockets = await _room(10)
    hub.batch_window = 2.0
    await _publish(hub, event_id, 0)
    await until(lambda: all(s.messages() == [0] for s in sockets), within=5, every=0)
    loop = asyncio.get_running_loop()
    published = loop.time()
    await _publish(hub, event_id, 1)
    await until(lambda: all(s.messages() == [0, 1] for s in sockets), within=5, every=0)
    assert loop.time() - published < 1.0
    assert all(len(s.frames) == 2 for s in sockets)


async def test_a_costly_room_spaces_its_frames_out():
    # Writes that take 5 ms each: a broadcast costs 100 ms of the event loop, so the room's
    # frames are at least 200 ms apart (FANOUT_SHARE), and the messages that come right after
    # one go out together in the next.
    hub, event_id, sockets = await _room(20)
    hub.batch_window = 1.0
    for socket in sockets:
        socket.write = functools.partial(_slow_write, socket)  # type: ignore[method-assign]
    await _publish(hub, event_id, 0)
    await until(lambda: all(s.messages() == [0] for s in sockets), within=5, every=0)
    for n in range(1, 6):
        await _publish(hub, event_id, n)
    await until(lambda: all(len(s.messages()) == 6 for s in sockets), within=5)
    for socket in sockets:
        assert socket.messages() == list(range(6))
        assert len(socket.frames) == 2


def _slow_write(socket: Socket, data: bytes | bytearray | memoryview) -> None:
    began = time.perf_counter()
    while time.perf_counter() - began < 0.005:
        pass
    socket.frames.append(bytes(data))
