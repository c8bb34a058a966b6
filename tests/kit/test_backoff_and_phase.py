"""The back-off of loops that ask a media server, and the random start of periodic loops:
the sequences themselves (pure functions, a seeded random source), no sleeping."""

from __future__ import annotations

import asyncio
import random

from bigfootlive.containers.health import ProbePace
from bigfootlive.kit.backoff import Backoff, backoff_delay
from bigfootlive.kit.periodic import Periodic, start_phase
from tests.fixtures.polling import until


def test_the_back_off_doubles_from_half_a_second_to_thirty():
    assert [backoff_delay(n) for n in range(1, 10)] == [
        0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0,
    ]  # fmt: skip
    assert backoff_delay(0) == 0.0
    assert backoff_delay(10_000) == 30.0  # a peer down for days: no overflow


def test_a_success_starts_the_back_off_again():
    backoff = Backoff()
    assert [backoff.failed() for _ in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff.failing
    backoff.succeeded()
    assert not backoff.failing
    assert [backoff.failed() for _ in range(2)] == [0.5, 1.0]


def test_the_health_probe_waits_its_interval_then_backs_off_past_it():
    pace = ProbePace(interval=5.0)
    waits = [pace.after(answered=False) for _ in range(8)]
    assert waits == [5.0, 5.0, 5.0, 5.0, 8.0, 16.0, 30.0, 30.0]
    assert pace.after(answered=True) == 5.0
    assert pace.after(answered=False) == 5.0  # from the beginning again
    fast = ProbePace(interval=0.2)
    assert [fast.after(answered=False) for _ in range(3)] == [0.5, 1.0, 2.0]


def test_loops_start_at_a_random_phase_of_their_interval():
    rng = random.Random(17)
    phases = [start_phase(10.0, rng) for _ in range(200)]
    assert all(0.0 <= p < 10.0 for p in phases)
    # spread over the interval, not bunched: each tenth of it is hit
    assert {int(p) for p in phases} == set(range(10))
    assert start_phase(0.0, rng) == 0.0


async def test_a_periodic_loop_waits_its_phase_before_the_first_step():
    runs = {"now": 0, "later": 0}

    async def step_now() -> None:
        runs["now"] += 1

    async def step_later() -> None:
        runs["later"] += 1

    assert Periodic("default", step_now, 1.0).phase is start_phase  # random unless told
    now = Periodic("now", step_now, 3600, phase=lambda interval: 0.0)
    later = Periodic("later", step_later, 0.01, phase=lambda interval: 3600.0)
    now.start()
    later.start()
    await until(lambda: runs["now"] == 1)
    await asyncio.sleep(0.05)  # five of `later`'s intervals: it is still in its phase
    # stopping does not wait for the phase to pass
    await asyncio.wait_for(asyncio.gather(now.stop(), later.stop()), 2)
    assert runs == {"now": 1, "later": 0}
