"""Tasks used only by the job tests. Loaded in worker subprocesses through
JOBS_EXTRA_TASK_MODULES=tests.jobs.probe_tasks; in-process tests import it directly."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bigfootlive.jobs import idempotency
from bigfootlive.jobs.registry import JobContext, Priority, task

# run id -> what happened, for in-process tests (the worker runs in the test's process)
RUNS: dict[str, list[dict[str, Any]]] = defaultdict(list)
FAIL_UNTIL: dict[str, int] = {}  # run id -> fail attempts below this number
GATES: dict[str, asyncio.Event] = {}
EFFECTS: dict[str, int] = defaultdict(int)


def _note(ctx: JobContext, run: str, **extra: Any) -> None:
    RUNS[run].append({"attempt": ctx.attempt, "at": time.monotonic(), "task": ctx.task, **extra})


@task(name="tests.flaky", max_retries=3, min_backoff_ms=100, max_backoff_ms=400)
async def flaky(ctx: JobContext, *, run: str) -> None:
    _note(ctx, run)
    if FAIL_UNTIL.get(run, 0) > 0:
        raise RuntimeError(f"planned failure {ctx.attempt}")


@task(name="tests.record", priority=Priority.DEFAULT)
async def record(ctx: JobContext, *, run: str, label: str = "") -> None:
    _note(ctx, run, label=label)


@task(name="tests.record_high", priority=Priority.HIGH)
async def record_high(ctx: JobContext, *, run: str, label: str = "") -> None:
    _note(ctx, run, label=label)


@task(name="tests.record_low", priority=Priority.LOW)
async def record_low(ctx: JobContext, *, run: str, label: str = "") -> None:
    _note(ctx, run, label=label)


@task(name="tests.gate", priority=Priority.HIGH)
async def gate(ctx: JobContext, *, run: str) -> None:
    _note(ctx, run, label="gate")
    await GATES[run].wait()


@task(name="tests.slow_first", time_limit=0.3, max_retries=2, min_backoff_ms=50, max_backoff_ms=100)
async def slow_first(ctx: JobContext, *, run: str) -> None:
    _note(ctx, run)
    if ctx.attempt == 1:
        await asyncio.sleep(5)


@task(name="tests.count_once")
async def count_once(ctx: JobContext, *, run: str) -> None:
    """A database effect guarded by the message's idempotency key."""
    async with ctx.state.db.transaction() as session:
        if await idempotency.first_time(session, f"tests.count:{ctx.message_id}"):
            EFFECTS[run] += 1
    _note(ctx, run)


@task(name="tests.file_probe", time_limit=700, max_retries=5)
async def file_probe(ctx: JobContext, *, path: str, seconds: float) -> None:
    """For worker-process tests: logs to a file; sleeps long only on its first start."""
    log = Path(path)
    first = not await asyncio.to_thread(log.exists)
    await asyncio.to_thread(_append, log, f"start {ctx.message_id}\n")
    await asyncio.sleep(seconds if first else 0.05)
    await asyncio.to_thread(_append, log, "done\n")


def _append(path: Path, line: str) -> None:
    with path.open("a") as f:
        f.write(line)


@task(name="tests.record_once", priority=Priority.DEFAULT)
async def record_once(ctx: JobContext[Any], *, run: str, label: str) -> None:
    """An idempotent job, as real ones are: every delivery is noted, its effect (a database
    key, committed with it) happens once; `effect=True` marks the delivery that had it."""
    async with ctx.state.db.transaction() as session:
        first = await idempotency.first_time(session, f"probe:{run}:{label}")
    _note(ctx, run, label=label, effect=first)
