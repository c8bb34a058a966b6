"""Password hashing parameters and hashing off the event loop."""

from __future__ import annotations

import asyncio
import time

from argon2 import extract_parameters

from bigfootlive.config import Settings
from bigfootlive.identity.passwords import Passwords


async def test_default_parameters_are_owasp_argon2id() -> None:
    passwords = Passwords(Settings())
    stored = await passwords.hash("plausible-tundra-velvet-42")
    params = extract_parameters(stored)
    assert stored.startswith("$argon2id$")
    assert (params.memory_cost, params.time_cost, params.parallelism) == (19_456, 2, 1)
    assert await passwords.verify(stored, "plausible-tundra-velvet-42") == (True, False)
    assert await passwords.verify(stored, "wrong") == (False, False)


async def test_hashes_with_weaker_parameters_are_flagged_for_rehash() -> None:
    weak = Passwords(Settings(argon2_memory_kib=1024, argon2_time_cost=1))
    stored = await weak.hash("plausible-tundra-velvet-42")
    assert await Passwords(Settings()).verify(stored, "plausible-tundra-velvet-42") == (True, True)


async def test_hashing_does_not_block_the_event_loop() -> None:
    passwords = Passwords(Settings())
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    start = time.perf_counter()
    await asyncio.gather(*(passwords.hash("plausible-tundra-velvet-42") for _ in range(4)))
    elapsed = time.perf_counter() - start
    task.cancel()
    # The loop kept ticking while four hashes ran in worker threads.
    assert ticks >= max(3, int(elapsed / 0.001 * 0.2))


async def test_hashing_pool_is_bounded_and_answers_busy_beyond_it():
    """One thread and one waiting place: of five verifications at once, two run (one after
    the other) and three are refused at once with 503 and Retry-After, not queued."""
    from bigfootlive.identity.passwords import HashingBusy

    passwords = Passwords(
        Settings(password_hash_threads=1, password_hash_max_waiting=1, argon2_memory_kib=8192)
    )
    try:
        stored = await passwords.hash("correct horse battery staple")
        results = await asyncio.gather(
            *(passwords.verify(stored, "correct horse battery staple") for _ in range(5)),
            return_exceptions=True,
        )
        assert [r for r in results if not isinstance(r, BaseException)] == [(True, False)] * 2
        busy = [r for r in results if isinstance(r, HashingBusy)]
        assert len(busy) == 3
        assert busy[0].status_code == 503
        assert busy[0].headers["Retry-After"] == "1"
        assert passwords.in_flight == 0
        assert await passwords.verify(stored, "correct horse battery staple") == (True, False)
    finally:
        passwords.close()
