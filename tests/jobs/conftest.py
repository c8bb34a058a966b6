"""Job tests run on three brokers: in-process (SQLite + StubBroker), Redis and RabbitMQ (both
with PostgreSQL), each with a worker inside the test process unless a test starts its own.
A module may add the `cluster` backend: PostgreSQL and a Redis Cluster of the session's own
(`cluster_cut`), the app's REDIS_URL and job broker, reached through relays that can cut."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures import services
from tests.fixtures.own_servers import own_redis_cluster
from tests.fixtures.redis_cut import ClusterCut

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture(params=["sqlite", "postgres", "rabbitmq"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "rabbitmq":
        services.require(services.port_open("127.0.0.1", 5672), "RabbitMQ on 127.0.0.1:5672")
    return str(request.param)


@pytest.fixture
def queue_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def cluster_cut() -> Iterator[ClusterCut]:
    """A Redis Cluster of three masters, each behind a relay (tests/fixtures/redis_cut)."""
    cut = ClusterCut()
    try:
        with own_redis_cluster(front=cut.front):
            yield cut
    finally:
        cut.stop()


@pytest.fixture
def settings_overrides(
    request: pytest.FixtureRequest, backend: str, queue_prefix: str
) -> Iterator[dict[str, Any]]:
    values: dict[str, Any] = {
        "jobs_inprocess_worker": True,
        "jobs_queue_prefix": queue_prefix,
        "jobs_scheduler": False,
        "jobs_worker_threads": 4,
    }
    if backend == "rabbitmq":
        values["broker_url"] = RABBITMQ_URL
    if backend == "cluster":
        values["redis_url"] = request.getfixturevalue("cluster_cut").url
    yield values
    if backend == "rabbitmq":
        delete_rabbitmq_queues(queue_prefix)


def delete_rabbitmq_queues(prefix: str) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        channel = connection.channel()
        for priority in ("high", "default", "low"):
            for suffix in ("", ".DQ", ".XQ"):
                channel.queue_delete(f"{prefix}.{priority}{suffix}")
    finally:
        connection.close()
