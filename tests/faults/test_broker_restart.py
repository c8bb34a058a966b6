"""The job broker, a RabbitMQ node of the test's own (`BROKER_URL=amqp://…`), killed and
restarted while jobs are committed, users created (webhook deliveries) and player beacons
posted: the API answers throughout (it does not need the broker: jobs wait in the outbox,
roll-ups in the beacon buffer), never a 500; afterwards every committed job's effect happened
exactly once, every acknowledged webhook event is delivered under one delivery id and the
analytics minutes hold exactly the acknowledged beacons."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bigfootlive.app import Loop
from bigfootlive.composition import AppState
from tests.conftest import DEFAULT_LOOPS
from tests.faults.conftest import DATABASE, flow_overrides
from tests.faults.deliveries import Deliveries
from tests.faults.traffic import Producer, effects_once, jobs_ran, outbox_rows
from tests.fixtures import services
from tests.fixtures.own_servers import RABBITMQ_SERVER, PostgresCluster, RabbitServer


@pytest.fixture
def rabbit(scratch: Path) -> Iterator[RabbitServer]:
    services.require(
        RABBITMQ_SERVER.exists() and shutil.which("epmd") is not None, "rabbitmq-server"
    )
    server = RabbitServer(scratch / f"rabbit-{uuid.uuid4().hex[:6]}")
    server.start()
    yield server
    server.close()


@pytest.fixture
def own_overrides(rabbit: RabbitServer) -> dict[str, Any]:
    return {
        **flow_overrides(rabbit.url),
        "jobs_extra_task_modules": ["tests.jobs.probe_tasks"],
    }


@pytest.fixture
def own_loops() -> frozenset[Loop]:
    return DEFAULT_LOOPS | {Loop.JOB_SCHEDULER}  # the outbox relay


async def test_rabbitmq_restart_under_jobs_webhooks_and_beacons(
    own_state: AppState,
    own_client: httpx.AsyncClient,
    rabbit: RabbitServer,
    primary: PostgresCluster,
    deliveries: Deliveries,
) -> None:
    run = f"broker-{uuid.uuid4().hex[:8]}"
    producer = Producer(own_state, run)
    producer.start()
    deliveries.start()
    try:
        await producer.progress()
        await deliveries.wait_for_progress()
        rabbit.stop()
        await producer.progress()  # commits go on: their jobs wait in the outbox
        await deliveries.wait_for_progress()  # users created, beacons acknowledged
        assert await outbox_rows(own_state) > 0
        assert (await own_client.get("/ready")).status_code == 200  # serving needs no broker
        rabbit.start()
        await producer.progress()
        await deliveries.wait_for_progress()
    finally:
        await producer.stop()
        await deliveries.stop()
    assert producer.failed == 0  # the database never failed a commit
    assert not deliveries.wrong, deliveries.wrong[:5]
    assert not deliveries.refused, [r.text for r in deliveries.refused[:5]]
    await jobs_ran(run, producer.acknowledged)
    effects_once(run, producer.acknowledged)
    await deliveries.reconcile(primary.url(DATABASE, driver="postgresql"))
    assert max(rabbit.boot_seconds) < 20, rabbit.boot_seconds
