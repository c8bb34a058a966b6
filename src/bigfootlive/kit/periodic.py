"""A background step repeated every few seconds, stopped between steps.

Stopping waits for a running step to finish instead of cancelling it: a step cancelled in the
middle of a database call makes SQLAlchemy close that connection under a shield, and an aiosqlite
connection closing while its thread waits on SQLite's write lock can keep the event loop's
shutdown waiting. Only a step still running after `grace` seconds is cancelled.

The first step comes at a random phase of the interval (`start_phase`), not at once: processes
started together (a deploy, a restart of the fleet) would otherwise run their sweeps, relays and
reconciliations against the database and Redis in lockstep for as long as they live. `phase`
replaces the random draw (a test passes a fixed one).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)

_random = random.Random()  # noqa: S311 - spreading loops in time, not a secret


def start_phase(interval: float, rng: random.Random | None = None) -> float:
    """Where in its first interval a loop starts: uniform in [0, interval)."""
    return (rng or _random).random() * max(interval, 0.0)


class Periodic:
    def __init__(
        self,
        name: str,
        step: Callable[[], Awaitable[object]],
        interval: float | Callable[[], float],
        *,
        grace: float = 10.0,
        phase: Callable[[float], float] = start_phase,
    ) -> None:
        self.name = name
        self.step = step
        self._interval = interval
        self.grace = grace
        self.phase = phase  # interval -> seconds before the first step
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def interval(self) -> float:
        return self._interval() if callable(self._interval) else self._interval

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        done, _ = await asyncio.wait({task}, timeout=self.grace)
        if not done:
            log.warning("periodic_step_overran", task=self.name, grace=self.grace)
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), self.phase(self.interval))
        while not self._stopping.is_set():
            try:
                await self.step()
            except Exception:
                log.exception("periodic_step_failed", task=self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)
