"""Job tests run on three brokers: in-process (SQLite + StubBroker), Redis and RabbitMQ (both
with PostgreSQL), each with a worker inside the test process unless a test starts its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures import services

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture(params=["sqlite", "postgres", "rabbitmq"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "rabbitmq":
        services.require(services.port_open("127.0.0.1", 5672), "RabbitMQ on 127.0.0.1:5672")
    return str(request.param)


@pytest.fixture
def queue_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings_overrides(backend: str, queue_prefix: str) -> Iterator[dict[str, Any]]:
    values: dict[str, Any] = {
        "jobs_inprocess_worker": True,
        "jobs_queue_prefix": queue_prefix,
        "jobs_scheduler": False,
        "jobs_worker_threads": 4,
    }
    if backend == "rabbitmq":
        values["broker_url"] = RABBITMQ_URL
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
