from __future__ import annotations

import asyncio
import itertools
import uuid

import pytest

from bigfootlive.composition import AppState
from bigfootlive.jobs import enqueue_after_commit
from tests.fixtures.jobs import settled
from tests.fixtures.polling import until
from tests.jobs import probe_tasks as probes


def run_id() -> str:
    return uuid.uuid4().hex


async def test_enqueued_job_runs_on_the_worker(state: AppState):
    run = run_id()
    await state.jobs.enqueue(probes.record, run=run, label="hello")
    await until(lambda: len(probes.RUNS[run]) == 1)
    assert probes.RUNS[run][0]["label"] == "hello"


async def test_job_enqueued_after_commit_is_not_sent_when_the_transaction_rolls_back(
    state: AppState,
):
    kept, dropped = run_id(), run_id()

    async def failing_request() -> None:
        async with state.db.transaction() as session:
            enqueue_after_commit(session, probes.record, run=dropped)
            raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError):
        await failing_request()
    async with state.db.transaction() as session:
        enqueue_after_commit(session, probes.record, run=kept)
    await until(lambda: len(probes.RUNS[kept]) == 1)
    await settled(state.jobs)
    assert probes.RUNS[dropped] == []


async def test_failing_job_retries_with_backoff_then_dead_letters_and_admin_retry_succeeds(
    state: AppState, factory, client
):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, platform_admin=True)
    run = run_id()
    probes.FAIL_UNTIL[run] = 1
    message_id = await state.jobs.enqueue(probes.flaky, run=run)

    # 1 run + 3 retries (max_retries=3), then the dead-letter list
    async def dead() -> list[dict]:
        response = await client.get(
            "/api/platform/jobs/dead?task=tests.flaky", headers=admin.headers
        )
        assert response.status_code == 200
        return [d for d in response.json()["items"] if d["message_id"] == message_id]

    for _ in range(300):
        if await dead():
            break
        await asyncio.sleep(0.05)
    [entry] = await dead()
    attempts = probes.RUNS[run]
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4]
    assert entry["attempts"] == 4
    assert "planned failure 4" in entry["error"]
    assert entry["arguments"] == {"run": run}
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(attempts)]
    # exponential back-off with jitter: at least half of min_backoff * 2**n (dramatiq's jitter)
    assert all(gap >= 0.05 for gap in gaps), gaps

    probes.FAIL_UNTIL[run] = 0  # the cause is fixed
    response = await client.post(
        f"/api/platform/jobs/dead/{entry['id']}/retry", headers=admin.headers
    )
    assert response.status_code == 202
    await until(lambda: len(probes.RUNS[run]) == 5)
    assert await dead() == []

    stats = (await client.get("/api/platform/jobs/stats", headers=admin.headers)).json()
    flaky = stats["tasks"]["tests.flaky"]
    assert flaky["dead"] == 1
    assert flaky["succeeded"] >= 1
    assert flaky["failed"] >= 4
    assert set(stats["queues"]) == set(state.jobs.queue_names)


async def test_admin_can_discard_a_dead_job(state: AppState, factory, client):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, platform_admin=True)
    run = run_id()
    probes.FAIL_UNTIL[run] = 1
    message_id = await state.jobs.enqueue(probes.flaky, run=run)

    async def entries() -> list[dict]:
        body = (await client.get("/api/platform/jobs/dead", headers=admin.headers)).json()
        return [d for d in body["items"] if d["message_id"] == message_id]

    for _ in range(300):
        if await entries():
            break
        await asyncio.sleep(0.05)
    [entry] = await entries()
    response = await client.delete(f"/api/platform/jobs/dead/{entry['id']}", headers=admin.headers)
    assert response.status_code == 204
    assert await entries() == []
    await settled(state.jobs)
    assert len(probes.RUNS[run]) == 4  # discarded, never run again


async def test_dead_letters_are_for_platform_admins_only(factory, client):
    tenant = await factory.tenant()
    tenant_admin = await factory.user(tenant, role=probes_role_admin())
    response = await client.get("/api/platform/jobs/dead", headers=tenant_admin.headers)
    assert response.status_code == 403
    response = await client.get("/api/platform/jobs/stats", headers=tenant_admin.headers)
    assert response.status_code == 403


def probes_role_admin():
    from bigfootlive.authz.roles import Role

    return Role.ADMIN


async def test_high_priority_jobs_run_before_low_priority_ones(state: AppState):
    await state.jobs.stop_worker()
    run = run_id()
    probes.GATES[run] = asyncio.Event()
    state.jobs.start_worker(threads=1, prefetch=20)
    await state.jobs.enqueue(probes.gate, run=run)
    await until(lambda: len(probes.RUNS[run]) == 1)  # the only thread is now busy
    for i in range(4):
        await state.jobs.enqueue(probes.record_low, run=run, label=f"low{i}")
    for i in range(4):
        await state.jobs.enqueue(probes.record, run=run, label=f"default{i}")
    for i in range(4):
        await state.jobs.enqueue(probes.record_high, run=run, label=f"high{i}")
    await asyncio.sleep(1.0)  # let the consumers prefetch everything
    probes.GATES[run].set()
    await until(lambda: len(probes.RUNS[run]) == 13)
    order = [r["label"][:-1] for r in probes.RUNS[run][1:]]
    assert order == ["high"] * 4 + ["default"] * 4 + ["low"] * 4


async def test_job_over_its_time_limit_is_stopped_and_retried(state: AppState):
    run = run_id()
    started = asyncio.get_running_loop().time()
    await state.jobs.enqueue(probes.slow_first, run=run)
    await until(lambda: len(probes.RUNS[run]) == 2)
    # the first attempt would have slept 5 s; the limit (0.3 s) cut it short
    assert asyncio.get_running_loop().time() - started < 4
    assert [a["attempt"] for a in probes.RUNS[run]] == [1, 2]


async def test_duplicate_delivery_applies_the_effect_once(state: AppState):
    run = run_id()
    message_id = str(uuid.uuid4())
    # the broker redelivers the same message (same id), e.g. after a lost ack
    await state.jobs.enqueue(probes.count_once, run=run, message_id=message_id)
    await state.jobs.enqueue(probes.count_once, run=run, message_id=message_id)
    await until(lambda: len(probes.RUNS[run]) == 2)
    assert probes.EFFECTS[run] == 1


async def test_delayed_job_waits_until_it_is_due(state: AppState):
    run = run_id()
    start = asyncio.get_running_loop().time()
    await state.jobs.enqueue(probes.record, run=run, delay_ms=600)
    await asyncio.sleep(0.3)
    assert probes.RUNS[run] == []
    await until(lambda: len(probes.RUNS[run]) == 1)
    assert probes.RUNS[run][0]["at"] - start >= 0.55


async def test_metrics_expose_job_outcomes_and_queue_depth(state: AppState, client):
    run = run_id()
    await state.jobs.enqueue(probes.record, run=run)
    await settled(state.jobs)  # its outcome is counted once it has run
    text = (await client.get("/metrics")).text
    queue = state.jobs.queue_name(probes.record.priority)
    assert (
        f'bigfootlive_jobs_total{{outcome="succeeded",queue="{queue}",task="tests.record"}}' in text
    )
    assert f'bigfootlive_jobs_queued{{queue="{queue}"}}' in text
    assert "bigfootlive_job_start_latency_seconds_bucket" in text
