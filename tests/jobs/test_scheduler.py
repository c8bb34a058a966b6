from __future__ import annotations

import datetime as dt
import uuid

from bigfootlive.composition import AppState
from bigfootlive.jobs.registry import CronSpec
from bigfootlive.jobs.scheduler import Scheduler
from tests.fixtures.jobs import settled
from tests.fixtures.polling import until
from tests.jobs import probe_tasks as probes


async def test_cron_entry_fires_on_schedule(state: AppState):
    run = uuid.uuid4().hex
    spec = CronSpec(
        name=f"tests.every_second.{run}",
        expression="* * * * * *",
        task=probes.record,
        kwargs={"run": run},
    )
    scheduler = Scheduler(state.jobs, state.cache, [spec], tick_seconds=0.05)
    scheduler.start()
    try:
        # Two runs on two second boundaries (a scheduler firing at every 0.05 s tick instead
        # would have enqueued dozens by then, all of which run before settled() returns).
        await until(lambda: len(probes.RUNS[run]) >= 2, within=10)
    finally:
        await scheduler.stop()
    await settled(state.jobs)
    assert 2 <= len(probes.RUNS[run]) <= 3


async def test_two_schedulers_sharing_the_cache_fire_each_run_once(state: AppState):
    """Several processes run a scheduler; the per-run lock lets only one enqueue each run."""
    run = uuid.uuid4().hex
    spec = CronSpec(
        name=f"tests.shared.{run}",
        expression="* * * * * *",
        task=probes.record,
        kwargs={"run": run},
    )
    first = Scheduler(state.jobs, state.cache, [spec])
    second = Scheduler(state.jobs, state.cache, [spec])
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for scheduler in (first, second):
        await scheduler.tick(start)  # arms the next run
    for offset in (1, 2, 3):
        at = start + dt.timedelta(seconds=offset, milliseconds=10)
        await first.tick(at)
        await second.tick(at)
    assert first.fired + second.fired == 3
    await settled(state.jobs)
    assert len(probes.RUNS[run]) == 3


def test_housekeeping_jobs_are_scheduled():
    from bigfootlive.jobs.registry import CRONS, load_tasks

    load_tasks()
    assert "identity.tasks.purge_expired_sessions" in CRONS
    assert "jobs.tasks.purge_job_records" in CRONS
