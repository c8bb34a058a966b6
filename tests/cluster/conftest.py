"""The app on a Redis Cluster of three masters that the test harness starts for itself
(tests/fixtures/own_servers.RedisClusterServers), with the shared PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.own_servers import RedisClusterServers, own_redis_cluster
from tests.realtime.conftest import REALTIME_SETTINGS


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[RedisClusterServers]:
    with own_redis_cluster() as cluster:
        yield cluster


@pytest.fixture(params=["postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """A Redis Cluster serves several processes: PostgreSQL only (SQLite is one process)."""
    return str(request.param)


@pytest.fixture
def settings_overrides(redis_cluster: RedisClusterServers) -> dict[str, Any]:
    return {
        **REALTIME_SETTINGS,
        "redis_url": redis_cluster.url,
        "jobs_inprocess_worker": True,  # the worker takes jobs from the cluster broker
        "jobs_queue_prefix": f"t{uuid.uuid4().hex[:10]}",
        "jobs_scheduler": False,
    }
