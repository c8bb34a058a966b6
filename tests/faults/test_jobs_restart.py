"""Jobs while their broker (a Redis of the test's own, persistent as a broker must be) and then
the database restart: every job whose transaction committed runs, its effect exactly once
(delivery is at least once; jobs are idempotent); the outbox relay sends what could not be sent
while the broker was down."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select

from bigfootlive.app import Loop, create_app
from bigfootlive.composition import AppState
from bigfootlive.models import JobOutbox
from tests.faults.conftest import DATABASE, own_settings
from tests.faults.traffic import Producer, effects_once, jobs_ran, outbox_rows
from tests.fixtures import services
from tests.fixtures.own_servers import PostgresCluster, RedisServer
from tests.jobs import probe_tasks as probes


@pytest.fixture
def broker(scratch: Path) -> Iterator[RedisServer]:
    services.require(shutil.which("redis-server") is not None, "redis-server")
    server = RedisServer(scratch / f"broker-{uuid.uuid4().hex[:6]}", persistent=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def job_state(
    tmp_path: Path, smtp_sink: services.SMTPSink, primary: PostgresCluster, broker: RedisServer
) -> AsyncIterator[AppState]:
    settings = own_settings(
        tmp_path,
        smtp_sink,
        primary.url(DATABASE),
        broker.url,
        jobs_inprocess_worker=True,
        jobs_queue_prefix=f"t{uuid.uuid4().hex[:8]}",
        jobs_outbox_relay_after_seconds=0.5,
        jobs_outbox_relay_interval_seconds=0.2,
        jobs_min_backoff_ms=100,
        jobs_max_backoff_ms=500,
        # Short retries keep the test quick, but a job that runs while the database is down
        # must outlast its restart (seconds on a loaded machine): 8 retries (the default) at
        # these backoffs spanned ~3 s, and a slow restart sent jobs to the dead letters.
        jobs_max_retries=120,
        jobs_extra_task_modules=["tests.jobs.probe_tasks"],
    )
    application = create_app(settings, loops={Loop.JOB_SCHEDULER})
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application.state.bigfoot


async def test_jobs_survive_broker_and_database_restarts(
    job_state: AppState, broker: RedisServer, primary: PostgresCluster
) -> None:
    run = f"faults-{uuid.uuid4().hex[:8]}"
    producer = Producer(job_state, run)
    producer.start()
    try:
        await producer.progress()
        broker.stop()
        await producer.progress()  # commits go on: their jobs wait in the outbox
        assert await outbox_rows(job_state) > 0
        broker.start()
        await producer.progress()
        primary.stop("fast")
        failed = producer.failed
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while producer.failed == failed:
            assert loop.time() < deadline
            await asyncio.sleep(0.05)
        primary.start()
        await producer.progress()
    finally:
        await producer.stop()
    await jobs_ran(run, producer.acknowledged)
    # Rows left in the outbox are sends whose delete failed while the database was down:
    # already delivered, they are sent again once their relay lease runs out (at least once).
    async with job_state.db.transaction() as session:
        pending = (await session.execute(select(JobOutbox))).scalars().all()
    delivered = {r["label"] for r in probes.RUNS[run]}
    assert {row.kwargs["label"] for row in pending if row.kwargs.get("run") == run} <= delivered
    effects_once(run, producer.acknowledged)
