"""`Coalesced`: the calls of one turn of the event loop go together, those that come while a
round trip is under way go in the next, one at a time; each caller gets its own answer, and no
caller's cancellation or failure is another's."""

from __future__ import annotations

import asyncio

import pytest

from bigfootlive.kit.coalesce import Coalesced


class Server:
    """A `send` that records each round trip, answers each call doubled, and can be held."""

    def __init__(self) -> None:
        self.trips: list[list[int]] = []
        self.hold: asyncio.Event | None = None
        self.fail: Exception | None = None
        self.tasks: list[asyncio.Task[object] | None] = []
        self.sent = asyncio.Event()  # a round trip has begun

    async def send(self, calls: list[int]) -> list[int]:
        self.trips.append(list(calls))
        self.tasks.append(asyncio.current_task())
        self.sent.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.fail is not None:
            raise self.fail
        return [2 * c for c in calls]


async def test_the_calls_of_one_turn_share_a_round_trip():
    server = Server()
    batch = Coalesced(server.send, "test", 64)
    assert await asyncio.gather(*(batch(n) for n in range(5))) == [0, 2, 4, 6, 8]
    assert server.trips == [[0, 1, 2, 3, 4]]
    assert batch.idle


async def test_a_lone_call_is_sent_by_its_caller():
    server = Server()
    batch = Coalesced(server.send, "test", 64)
    assert await batch(7) == 14
    assert server.trips == [[7]]
    assert server.tasks == [asyncio.current_task()]  # no task of its own
    assert batch.idle


async def test_calls_made_while_one_is_under_way_go_together_in_the_next():
    server = Server()
    server.hold = asyncio.Event()
    batch = Coalesced(server.send, "test", 64)
    first = asyncio.ensure_future(batch(1))
    await server.sent.wait()
    later = [asyncio.ensure_future(batch(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    assert server.trips == [[1]]  # one round trip at a time
    server.hold.set()
    assert await asyncio.gather(first, *later) == [2, 4, 6, 8]
    assert server.trips == [[1], [2, 3, 4]]
    assert batch.idle


async def test_at_most_calls_in_one_round_trip():
    server = Server()
    batch = Coalesced(server.send, "test", 2)
    assert await asyncio.gather(*(batch(n) for n in range(5))) == [0, 2, 4, 6, 8]
    assert server.trips == [[0, 1], [2, 3], [4]]


async def test_a_cancelled_caller_cancels_no_one_elses_call():
    """The caller that began a shared round trip goes away (its request was cancelled): the
    others of that round trip still get their answers."""
    server = Server()
    server.hold = asyncio.Event()
    batch = Coalesced(server.send, "test", 64)
    calls = [asyncio.ensure_future(batch(n)) for n in range(4)]
    await server.sent.wait()
    assert server.trips == [[0, 1, 2, 3]]
    calls[0].cancel()
    await asyncio.sleep(0)
    server.hold.set()
    assert await asyncio.gather(*calls[1:]) == [2, 4, 6]
    with pytest.raises(asyncio.CancelledError):
        await calls[0]
    assert batch.idle


async def test_a_caller_cancelled_before_its_turn_ends_leaves_the_others_to_be_sent():
    server = Server()
    batch = Coalesced(server.send, "test", 64)
    first = asyncio.ensure_future(batch(1))
    await asyncio.sleep(0)  # it waits out the turn
    others = [asyncio.ensure_future(batch(n)) for n in (2, 3)]
    first.cancel()
    assert await asyncio.gather(*others) == [4, 6]
    assert server.trips == [[2, 3]]
    assert batch.idle


async def test_a_failed_round_trip_fails_each_of_its_calls_and_the_next_is_tried_afresh():
    server = Server()
    server.fail = ConnectionError("gone")
    batch = Coalesced(server.send, "test", 64)
    outcomes = await asyncio.gather(*(batch(n) for n in range(3)), return_exceptions=True)
    assert [type(o) for o in outcomes] == [ConnectionError] * 3
    server.fail = None
    assert await batch(5) == 10
    assert server.trips == [[0, 1, 2], [5]]
