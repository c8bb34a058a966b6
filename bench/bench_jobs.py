"""Job throughput (jobs/s per worker) and enqueue-to-start latency, per broker.

    python -m bench.bench_jobs [--jobs 2000] [--brokers stub,redis,rabbitmq]

Each broker gets fresh queues (a random prefix), a worker in this process running no-op jobs,
and two kinds of run: a pre-filled queue drained by one worker (jobs/s with 1 and 4 threads) and
a trickle (enqueue-to-start latency on an idle queue). Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from typing import Any

from bigfootlive.composition import AppState
from bigfootlive.config import Settings
from bigfootlive.jobs.registry import JobContext, task

REDIS_URL = "redis://127.0.0.1:6379/0"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"

STARTS: dict[str, float] = {}
SENT: dict[str, float] = {}
DONE = asyncio.Event()
EXPECTED = 0


@task(name="bench.noop")
async def noop(ctx: JobContext, *, n: int, sent_at: float) -> None:
    STARTS[ctx.message_id] = time.time()
    SENT[ctx.message_id] = sent_at
    if len(STARTS) >= EXPECTED:
        DONE.set()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def settings_for(broker: str, tmp: str) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp}/bench.db",
        "jobs_queue_prefix": f"bench{uuid.uuid4().hex[:8]}",
        "jobs_inprocess_worker": False,
        "jobs_scheduler": False,
        "log_level": "ERROR",
        "mail_outbox_dir": f"{tmp}/outbox",
    }
    if broker in ("redis", "rabbitmq"):
        values["redis_url"] = REDIS_URL
        values["redis_key_prefix"] = f"bench:{uuid.uuid4().hex[:8]}:"
    if broker == "rabbitmq":
        values["broker_url"] = RABBITMQ_URL
    return Settings(**values)


def reset(jobs: int) -> None:
    global EXPECTED, DONE
    STARTS.clear()
    SENT.clear()
    EXPECTED = jobs
    DONE = asyncio.Event()


async def drain(state: AppState, jobs: int, threads: int) -> dict[str, Any]:
    """Fill the queue first (32 concurrent senders), then time one worker emptying it."""
    reset(jobs)
    began = time.time()
    for chunk in range(0, jobs, 32):
        await asyncio.gather(
            *(
                state.jobs.enqueue(noop, n=n, sent_at=time.time())
                for n in range(chunk, min(jobs, chunk + 32))
            )
        )
    enqueue_s = time.time() - began
    started = time.time()
    state.jobs.start_worker(threads=threads)
    await asyncio.wait_for(DONE.wait(), timeout=300)
    finished = max(STARTS.values())
    await state.jobs.stop_worker()
    return {
        "jobs": jobs,
        "worker_threads": threads,
        "enqueue_per_s": round(jobs / max(enqueue_s, 1e-9)),
        "jobs_per_s": round(jobs / max(finished - started, 1e-9)),
    }


async def trickle(state: AppState, jobs: int, spacing: float) -> dict[str, Any]:
    """Enqueue-to-start latency on an idle queue with a running worker."""
    reset(jobs)
    state.jobs.start_worker(threads=4)
    await asyncio.sleep(0.5)  # consumers connected
    for n in range(jobs):
        await state.jobs.enqueue(noop, n=n, sent_at=time.time())
        await asyncio.sleep(spacing)
    await asyncio.wait_for(DONE.wait(), timeout=300)
    await state.jobs.stop_worker()
    latencies = [(STARTS[m] - SENT[m]) * 1000 for m in STARTS]
    return {
        "jobs": jobs,
        "start_latency_ms_p50": round(statistics.median(latencies), 2),
        "start_latency_ms_p99": round(percentile(latencies, 0.99), 2),
    }


async def bench_broker(broker: str, jobs: int) -> dict[str, Any]:
    from bigfootlive.migrations import upgrade_database

    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(broker, tmp)
        await upgrade_database(settings.database_url)
        state = AppState.build(settings)
        state.jobs.bind(state, asyncio.get_running_loop())
        try:
            burst_1 = await drain(state, jobs, threads=1)
            burst_4 = await drain(state, jobs, threads=4)
            idle = await trickle(state, min(200, jobs), spacing=0.01)
        finally:
            await state.close()
            if broker == "rabbitmq":
                from tests.jobs.conftest import delete_rabbitmq_queues

                delete_rabbitmq_queues(settings.jobs_queue_prefix)
        return {
            "broker": type(state.jobs.broker).__name__,
            "burst_1_thread": burst_1,
            "burst_4_threads": burst_4,
            "idle_queue_latency": idle,
        }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--brokers", default="stub,redis,rabbitmq")
    args = parser.parse_args()
    results = {}
    for broker in args.brokers.split(","):
        results[broker] = await bench_broker(broker, args.jobs)
    json.dump(
        {"benchmark": "jobs", "python": sys.version.split()[0], "results": results},
        sys.stdout,
        indent=2,
    )
    print()


if __name__ == "__main__":
    asyncio.run(main())
