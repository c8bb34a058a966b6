"""The sockets' heartbeat (realtime/heartbeat.py): every socket is pinged once an interval, the
pings of many sockets spread over the interval in turns, and a silent socket is cut off (4410)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from bigfootlive.realtime import protocol as p
from bigfootlive.realtime.connection import Connection, Room
from bigfootlive.realtime.heartbeat import MAX_TURNS, beat, turns
from tests.realtime.conftest import REALTIME_SETTINGS, Client, create_event, join

SPREAD = {**REALTIME_SETTINGS, "ws_heartbeat_seconds": 2.0, "ws_idle_timeout_seconds": 600.0}
SILENCE = {**REALTIME_SETTINGS, "ws_heartbeat_seconds": 0.3, "ws_idle_timeout_seconds": 1.0}


def test_an_interval_is_split_into_turns_of_about_a_second() -> None:
    assert turns(0.3) == 1  # short intervals (tests) ping everyone at once
    assert turns(2.0) == 2
    assert turns(20.0) == 20
    assert turns(600.0) == MAX_TURNS


@dataclass
class _Hub:
    """What `beat` reads of the hub: its rooms and the idle limit."""

    rooms: dict[uuid.UUID, Room] = field(default_factory=dict)
    idle_timeout_seconds: float = 60.0


class _Socket:
    """A socket's transport as the hub's fast path writes to it (Connection.offer)."""

    def __init__(self, log: list[int]) -> None:
        self.log = log

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        self.log.append(id(self))


async def _closer(code: int, reason: str) -> None:
    return None


async def _sender(text: str) -> None:
    return None


def test_each_socket_is_pinged_once_over_the_turns_of_an_interval() -> None:
    writes: list[int] = []
    sockets = [_Socket(writes) for _ in range(200)]
    room = Room(uuid.uuid4())
    for socket in sockets:
        connection = Connection(room.event_id, None, _sender, _closer, 8, socket)  # type: ignore[arg-type]
        room.connections[connection.id] = connection
    hub = _Hub(rooms={room.event_id: room})

    per_turn = []
    for turn in range(10):
        before = len(writes)
        beat(hub, turn, 10)  # type: ignore[arg-type]  # up to 128 sockets written at once
        per_turn.append(len(writes) - before)

    assert sorted(writes) == sorted(id(s) for s in sockets)  # every socket once, none twice
    assert max(per_turn) < 60, per_turn  # spread over the turns (20 expected in each)
    beat(hub, 3, 10)  # type: ignore[arg-type]
    assert len(writes) == 200 + per_turn[3]  # a socket's turn does not move


async def _first_pings(clients: list[Client], within: float) -> list[float]:
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def first(client: Client) -> float:
        await client.next("ping", within=within)
        return loop.time() - started

    return list(await asyncio.gather(*(first(c) for c in clients)))


@pytest.mark.parametrize("settings_overrides", [SPREAD])
async def test_pings_of_many_sockets_are_spread_over_the_interval(client, world, live_server):
    event = await create_event(client, world["owner"])
    url = live_server.url(event["id"])
    viewers = [await join(url, world["viewer"]) for _ in range(24)]

    arrivals = await _first_pings(viewers, within=6.0)

    # Two turns a second apart (2 s interval): every socket pinged within an interval of its
    # joining, but not all in the same instant (24 sockets in one turn: 1 in 8 million).
    assert max(arrivals) < 5.0
    assert max(arrivals) - min(arrivals) > 0.5, arrivals


@pytest.mark.parametrize("settings_overrides", [SILENCE])
async def test_a_silent_socket_is_cut_off_and_one_that_answers_stays(client, world, live_server):
    event = await create_event(client, world["owner"])
    url = live_server.url(event["id"])
    silent = await join(url, world["viewer"])
    answering = await join(url, world["viewer2"])

    async def answer(viewer: Client) -> Any:
        while True:
            await viewer.next("ping", within=10.0)
            await viewer.send(type="pong")

    answers = asyncio.create_task(answer(answering))
    try:
        assert await silent.closed_with(within=5.0) == p.CloseCode.IDLE_TIMEOUT
        assert not answers.done()  # the answering socket, as old, was pinged and kept
    finally:
        answers.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await answers
    await answering.send(type="ping", ref="still-there")
    assert (await answering.next("pong", ref="still-there"))["ref"] == "still-there"
