"""Starting and stopping job processing: inside the API process, or as `bigfootlive worker`."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass

import structlog

from bigfootlive.composition import AppState
from bigfootlive.config import Settings
from bigfootlive.jobs.outbox import OutboxRelay, make_relay
from bigfootlive.jobs.scheduler import Scheduler

log = structlog.get_logger(__name__)


@dataclass
class JobRuntime:
    state: AppState
    scheduler: Scheduler | None = None
    relay: OutboxRelay | None = None

    @classmethod
    async def start(cls, state: AppState, *, worker: bool, scheduler: bool) -> JobRuntime:
        state.jobs.bind(state, asyncio.get_running_loop())
        runtime = cls(state)
        if worker and state.jobs.in_process:
            # Nothing can be waiting in an in-process broker yet: start on the first job.
            state.jobs.autostart = True
        elif worker:
            state.jobs.start_worker()
        if scheduler:
            runtime.scheduler = Scheduler(state.jobs, state.cache)
            runtime.scheduler.start()
            runtime.relay = make_relay(state.jobs, state.db)
            runtime.relay.start()
        return runtime

    async def stop(self) -> None:
        if self.relay is not None:
            await self.relay.stop()
        if self.scheduler is not None:
            await self.scheduler.stop()
        await self.state.jobs.stop_worker()


async def run_worker(
    settings: Settings, *, threads: int | None, queues: set[str] | None, scheduler: bool
) -> None:
    """Process jobs until SIGINT/SIGTERM; unfinished jobs go back to the broker."""
    state = AppState.build(settings)
    try:
        await state.db.check_row_security(settings)
    except BaseException:
        await state.close()
        raise
    state.jobs.bind(state, asyncio.get_running_loop())
    state.jobs.start_worker(threads=threads, queues=queues)
    cron = Scheduler(state.jobs, state.cache) if scheduler else None
    relay = make_relay(state.jobs, state.db) if scheduler else None
    if cron is not None and relay is not None:
        cron.start()
        relay.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker_started",
        broker=type(state.jobs.broker).__name__,
        queues=sorted(queues or state.jobs.queue_names),
        threads=threads or settings.jobs_worker_threads,
    )
    try:
        await stop.wait()
    finally:
        if cron is not None and relay is not None:
            await relay.stop()
            await cron.stop()
        await state.close()
        log.info("worker_stopped")
