"""An idle worker on the Redis broker waits on Redis rather than polling it (jobs/redis_wait.py),
and takes what comes as soon as it comes: new jobs, due delayed jobs, retries; and it stops at
once. On a plain Redis and on a Redis Cluster (where it waits on the master of the broker's
slot)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.crc import key_slot

from bigfootlive.composition import AppState
from bigfootlive.jobs.redis_wait import IDLE_WAIT_SECONDS, WaitingRedisBroker
from tests.fixtures.polling import until
from tests.fixtures.redis_cut import ClusterCut
from tests.jobs import probe_tasks as probes

# Every consumer of the worker: three queues and their delay queues.
CONSUMERS = 6


@pytest.fixture(params=["postgres", "cluster"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)  # the Redis broker on Redis, or on a Redis Cluster


async def idle(state: AppState) -> WaitingRedisBroker:
    """The broker, once every consumer of the worker is blocked on Redis (none polls)."""
    broker = state.jobs.broker
    assert isinstance(broker, WaitingRedisBroker)
    await until(lambda: broker.waiting == CONSUMERS)
    return broker


async def test_a_job_enqueued_while_the_worker_waits_runs_at_once(state: AppState):
    await idle(state)
    run = uuid.uuid4().hex
    started = asyncio.get_running_loop().time()
    await state.jobs.enqueue(probes.record, run=run)
    await until(lambda: len(probes.RUNS[run]) == 1)
    # Not after the consumers' wait ran out (IDLE_WAIT_SECONDS): the enqueue woke them.
    assert probes.RUNS[run][0]["at"] - started < IDLE_WAIT_SECONDS / 2
    await idle(state)  # and they wait again


async def test_a_delayed_job_runs_when_due_while_the_worker_waits(state: AppState):
    await idle(state)
    run = uuid.uuid4().hex
    started = asyncio.get_running_loop().time()
    await state.jobs.enqueue(probes.record, run=run, delay_ms=1500)
    await until(lambda: len(probes.RUNS[run]) == 1)
    # The delay queue's consumer waited until the job was due, not for its whole wait.
    assert 1.45 <= probes.RUNS[run][0]["at"] - started < 1.5 + IDLE_WAIT_SECONDS / 2


async def test_retries_are_not_held_by_waiting_consumers(state: AppState):
    await idle(state)
    run = uuid.uuid4().hex
    probes.FAIL_UNTIL[run] = 1  # every attempt fails: 1 run + 3 retries after 0.1-0.4 s each
    started = asyncio.get_running_loop().time()
    await state.jobs.enqueue(probes.flaky, run=run)
    await until(lambda: len(probes.RUNS[run]) == 4)
    assert probes.RUNS[run][-1]["at"] - started < IDLE_WAIT_SECONDS - 1


async def test_stopping_a_waiting_worker_is_prompt(state: AppState):
    await idle(state)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await state.jobs.stop_worker()
    assert loop.time() - started < IDLE_WAIT_SECONDS / 2
    # A worker started again waits, and takes jobs, like the first.
    state.jobs.start_worker()
    await idle(state)
    run = uuid.uuid4().hex
    await state.jobs.enqueue(probes.record, run=run)
    await until(lambda: len(probes.RUNS[run]) == 1)


@pytest.mark.parametrize("backend", ["cluster"], indirect=True)
async def test_a_waiting_worker_follows_its_slot_to_another_master(
    state: AppState, cluster_cut: ClusterCut
):
    broker = await idle(state)
    slot = key_slot(broker.namespace.encode())
    # Resharding: the master its consumers wait on answers them MOVED.
    moved_to = await asyncio.to_thread(cluster_cut.move_slot, slot)
    run = uuid.uuid4().hex
    await state.jobs.enqueue(probes.record, run=run)
    await until(lambda: len(probes.RUNS[run]) == 1)
    await idle(state)  # they wait again, on the new master, and do not poll
    assert not broker.polls
    assert broker.server(broker.namespace).connection_pool.connection_kwargs["port"] == moved_to
