"""`kit.singleflight.SingleFlight`: one load per key at a time, shared by its waiters."""

from __future__ import annotations

import asyncio

import pytest

from bigfootlive.kit.singleflight import SingleFlight


async def test_concurrent_callers_share_one_load_per_key():
    flight: SingleFlight[str] = SingleFlight("test")
    loads: list[str] = []
    gate = asyncio.Event()

    def loader(key: str):
        async def load() -> str:
            loads.append(key)
            await gate.wait()
            return key.upper()

        return load

    waiting = [asyncio.ensure_future(flight(k, loader(k))) for k in ("a", "b") * 8]
    await asyncio.sleep(0)
    assert len(flight) == 2
    gate.set()
    assert await asyncio.gather(*waiting) == ["A", "B"] * 8
    assert sorted(loads) == ["a", "b"]
    assert len(flight) == 0
    assert await flight("a", loader("a")) == "A"  # over: the next caller loads again
    assert loads.count("a") == 2


async def test_a_failure_reaches_every_waiter_and_is_not_kept():
    flight: SingleFlight[int] = SingleFlight("test")
    calls: list[int] = []
    gate = asyncio.Event()

    async def failing() -> int:
        calls.append(1)
        await gate.wait()
        raise ConnectionError("down")

    waiting = [asyncio.ensure_future(flight("k", failing)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert len(calls) == 1
    assert all(isinstance(r, ConnectionError) for r in results)

    async def working() -> int:
        return 7

    assert await flight("k", working) == 7


async def test_a_cancelled_caller_cancels_neither_the_load_nor_the_others():
    flight: SingleFlight[int] = SingleFlight("test")
    gate = asyncio.Event()

    async def load() -> int:
        await gate.wait()
        return 1

    first = asyncio.ensure_future(flight("k", load))
    second = asyncio.ensure_future(flight("k", load))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    gate.set()
    assert await second == 1
