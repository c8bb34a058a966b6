"""At least once on the Redis broker when a connection breaks at the worst moment: a fetch that
took jobs from their queue whose reply never came back (as when Redis is killed after running
it), and delayed jobs a worker held when its connections broke. Each job still runs. A relay in
front of the real Redis (tests/fixtures/redis_cut) loses the reply or breaks the connections; on
a Redis Cluster, a relay in front of each master."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from bigfootlive.composition import AppState
from tests.fixtures.polling import until
from tests.fixtures.redis_cut import ClusterCut, RedisCut
from tests.jobs import probe_tasks as probes


@pytest.fixture(params=["postgres", "cluster"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)  # the Redis broker on Redis, or on a Redis Cluster


@pytest.fixture
def relay(request: pytest.FixtureRequest, backend: str) -> Iterator[RedisCut | ClusterCut]:
    if backend == "cluster":  # the cluster's relays (its nodes announce them)
        yield request.getfixturevalue("cluster_cut")
        return
    redis_url: str = request.getfixturevalue("redis_url")
    cut = RedisCut(int(redis_url.rsplit(":", 1)[1].split("/")[0]))
    cut.start()
    yield cut
    cut.stop()


@pytest.fixture
def settings_overrides(
    settings_overrides: dict[str, Any], relay: RedisCut | ClusterCut
) -> dict[str, Any]:
    if isinstance(relay, ClusterCut):
        return settings_overrides  # REDIS_URL names the relays (tests/jobs/conftest.py)
    return {**settings_overrides, "broker_url": relay.url}


def fetch_of(queue: str) -> tuple[bytes, bytes]:
    """What a fetch of `queue` holds (Dramatiq's dispatch script: command, ..., queue name)."""
    return b"\r\nfetch\r\n", f"\r\n{queue}\r\n".encode()


async def test_a_job_whose_fetch_reply_was_lost_runs(
    state: AppState, relay: RedisCut | ClusterCut, queue_prefix: str
):
    relay.arm(*fetch_of(f"{queue_prefix}.default"))
    run = uuid.uuid4().hex
    await state.jobs.enqueue(probes.record, run=run)
    await until(relay.cut.is_set)  # the job left its queue; the worker never heard of it
    await until(lambda: len(probes.RUNS[run]) >= 1, within=20)


async def test_a_delayed_job_whose_fetch_reply_was_lost_runs(
    state: AppState, relay: RedisCut | ClusterCut, queue_prefix: str
):
    relay.arm(*fetch_of(f"{queue_prefix}.default.DQ"))
    run = uuid.uuid4().hex
    await state.jobs.enqueue(probes.record, run=run, delay_ms=300)
    await until(relay.cut.is_set)
    await until(lambda: len(probes.RUNS[run]) >= 1, within=20)


async def test_delayed_jobs_held_when_the_connections_break_run(
    state: AppState, relay: RedisCut | ClusterCut, queue_prefix: str
):
    broker: Any = state.jobs.broker
    held = f"{broker.namespace}:__acks__.{broker.broker_id}.{queue_prefix}.default.DQ"
    run = uuid.uuid4().hex
    for label in ("a", "b"):
        await state.jobs.enqueue(probes.record, run=run, label=label, delay_ms=1500)
    # The worker holds them (fetched, waiting until they are due) when every connection breaks.
    await until(lambda: broker.client.scard(held) == 2)
    relay.drop_all()
    await until(lambda: len({r["label"] for r in probes.RUNS[run]}) == 2, within=20)
