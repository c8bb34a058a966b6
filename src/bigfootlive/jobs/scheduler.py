"""Cron: each process may run a scheduler; a per-fire lock in the cache (SET NX on Redis) makes
exactly one of them enqueue each due run, so adding processes never double-fires a job."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import structlog
from croniter import croniter

from bigfootlive.jobs.queue import JobQueue
from bigfootlive.jobs.registry import CRONS, CronSpec
from bigfootlive.kit.backends import Cache
from bigfootlive.kit.periodic import Periodic

log = structlog.get_logger(__name__)


class Scheduler:
    def __init__(
        self,
        queue: JobQueue,
        cache: Cache,
        specs: Iterable[CronSpec] | None = None,
        *,
        tick_seconds: float = 0.5,
    ) -> None:
        self.queue = queue
        self.cache = cache
        self.specs = list(CRONS.values() if specs is None else specs)
        self.tick_seconds = tick_seconds
        self._next: dict[str, dt.datetime] = {}
        self._loop = Periodic("job-scheduler", self._tick_now, tick_seconds)
        self.fired = 0

    def _upcoming(self, spec: CronSpec, after: dt.datetime) -> dt.datetime:
        result: dt.datetime = croniter(spec.expression, after).get_next(dt.datetime)
        return result

    async def tick(self, now: dt.datetime) -> int:
        """Enqueue every entry due at `now`; returns how many this process fired."""
        fired = 0
        for spec in self.specs:
            due = self._next.get(spec.name)
            if due is None:
                self._next[spec.name] = self._upcoming(spec, now)
                continue
            if due > now:
                continue
            self._next[spec.name] = self._upcoming(spec, now)
            lock = f"jobs:cron:{spec.name}:{int(due.timestamp())}"
            if not await self.cache.add(lock, b"1", ttl=24 * 3600):
                continue  # another process fired this run
            try:
                await self.queue.enqueue(spec.task, **spec.kwargs)
                fired += 1
            except Exception:
                await self.cache.delete(lock)
                log.exception("cron_enqueue_failed", cron=spec.name)
        self.fired += fired
        return fired

    async def _tick_now(self) -> None:
        await self.tick(dt.datetime.now(dt.UTC))

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
