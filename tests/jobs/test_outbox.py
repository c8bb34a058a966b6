"""The transactional outbox: a job commits with the change that wants it, is sent after the
commit, and is sent by the relay when the process died between the commit and the send."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

from sqlalchemy import func, select

from bigfootlive.authz.roles import Role
from bigfootlive.composition import AppState
from bigfootlive.config import Settings
from bigfootlive.db import utcnow
from bigfootlive.jobs import enqueue_after_commit, outbox
from bigfootlive.jobs.outbox import OutboxRelay
from bigfootlive.models import DeadJob, JobOutbox
from tests.fixtures.jobs import settled
from tests.fixtures.polling import until
from tests.jobs import probe_tasks as probes
from tests.jobs.test_queue import run_id


async def outbox_rows(state: AppState) -> list[JobOutbox]:
    async with state.db.transaction() as session:
        return list((await session.execute(select(JobOutbox))).scalars())


def relay(state: AppState, *, after_seconds: float = 0.0) -> OutboxRelay:
    return OutboxRelay(state.jobs, state.db, after_seconds=after_seconds, interval_seconds=0.1)


async def commit_without_sending(state: AppState, run: str, count: int = 1) -> None:
    """Commit a transaction that enqueued jobs, but never run its after-commit hooks: what a
    process that dies right after its COMMIT leaves behind."""
    async with state.db.sessionmaker() as session:
        for i in range(count):
            enqueue_after_commit(session, probes.record, run=run, label=str(i))
        await session.commit()


async def test_job_is_sent_after_commit_and_its_outbox_row_removed(state: AppState):
    run = run_id()
    async with state.db.transaction() as session:
        enqueue_after_commit(session, probes.record, run=run, label="committed")
        assert len(await outbox_rows(state)) == 0  # not visible before the commit
    await until(lambda: len(probes.RUNS[run]) == 1)
    assert probes.RUNS[run][0]["label"] == "committed"
    await outbox.deleted_sent_rows(state.db.engine)  # one DELETE for the rows sent together
    assert await outbox_rows(state) == []


async def test_rolled_back_transaction_writes_no_outbox_row_and_sends_nothing(state: AppState):
    run = run_id()
    try:
        async with state.db.transaction() as session:
            enqueue_after_commit(session, probes.record, run=run)
            await session.flush()
            raise RuntimeError("the request failed")
    except RuntimeError:
        pass
    assert await outbox_rows(state) == []
    assert await relay(state).relay_once() == 0
    await settled(state.jobs)
    assert probes.RUNS[run] == []


async def test_job_committed_but_never_sent_is_delivered_by_the_relay(state: AppState):
    run = run_id()
    await commit_without_sending(state, run)
    assert len(await outbox_rows(state)) == 1
    await settled(state.jobs)
    assert probes.RUNS[run] == []  # lost without the outbox

    # Younger than the grace period: the after-commit send may still be on its way.
    assert await relay(state, after_seconds=60).relay_once() == 0
    assert await relay(state).relay_once() == 1
    await until(lambda: len(probes.RUNS[run]) == 1)
    assert await outbox_rows(state) == []
    assert await relay(state).relay_once() == 0  # nothing sent twice
    await settled(state.jobs)
    assert len(probes.RUNS[run]) == 1


async def test_relay_sends_the_message_id_chosen_at_commit(state: AppState):
    run = run_id()
    async with state.db.sessionmaker() as session:
        enqueue_after_commit(session, probes.count_once, run=run)
        await session.commit()
    [row] = await outbox_rows(state)
    # The same row relayed twice (a relay that died before deleting it): one effect.
    await state.jobs.enqueue(probes.count_once, message_id=row.message_id, run=run)
    assert await relay(state).relay_once() == 1
    await until(lambda: len(probes.RUNS[run]) == 2)
    assert probes.EFFECTS[run] == 1


async def test_two_relays_never_send_the_same_row(state: AppState):
    run = run_id()
    await commit_without_sending(state, run, count=20)
    first, second = relay(state), relay(state)
    sent = await asyncio.gather(first.relay_once(), second.relay_once())
    assert sum(sent) == 20
    await until(lambda: len(probes.RUNS[run]) == 20)
    await settled(state.jobs)
    assert sorted(int(r["label"]) for r in probes.RUNS[run]) == list(range(20))
    assert await outbox_rows(state) == []


async def test_relay_loop_delivers_a_job_left_by_a_killed_process(
    state: AppState, settings: Settings
):
    """A separate process commits a job and dies before its after-commit send; the relay
    loop (run by every process with `JOBS_SCHEDULER` on) sends it."""
    run = run_id()
    script = textwrap.dedent(
        f"""
        import asyncio, os
        from bigfootlive.config import Settings
        from bigfootlive.jobs import enqueue_after_commit
        from bigfootlive.composition import AppState
        from tests.jobs import probe_tasks

        async def main():
            state = AppState.build(Settings(database_url={settings.database_url!r},
                                            redis_url=None, broker_url=None))
            async with state.db.sessionmaker() as session:
                enqueue_after_commit(session, probe_tasks.record, run={run!r}, label="orphan")
                await session.commit()
            os._exit(9)  # dies between the commit and the send

        asyncio.run(main())
        """
    )
    env = {**os.environ, "JOBS_SCHEDULER": "false", "LOG_LEVEL": "ERROR"}
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", script], env=env, capture_output=True, timeout=60
    )
    assert result.returncode == 9, result.stderr.decode()[-2000:]
    async with state.db.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(JobOutbox))).scalar() == 1

    runtime_relay = OutboxRelay(state.jobs, state.db, after_seconds=0.2, interval_seconds=0.1)
    runtime_relay.start()
    try:
        await until(lambda: len(probes.RUNS[run]) == 1)
    finally:
        await runtime_relay.stop()
    assert probes.RUNS[run][0]["label"] == "orphan"
    assert await outbox_rows(state) == []


async def test_row_of_an_unregistered_task_goes_to_the_dead_letters_after_its_attempts(
    state: AppState, factory, client
):
    async with state.db.transaction() as session:
        session.add(
            JobOutbox(
                message_id="msg-of-a-removed-task",
                task="tests.removed_task",
                kwargs={"run": "x"},
                created_at=utcnow(),
                attempts=0,
            )
        )
    # A lease of 0 s: each relay_once may claim the row again (in production, once a minute).
    relayer = OutboxRelay(
        state.jobs, state.db, after_seconds=0, interval_seconds=0.1, lease_seconds=0,
        max_attempts=3,
    )  # fmt: skip
    for attempt in (1, 2):
        assert await relayer.relay_once() == 0
        [row] = await outbox_rows(state)
        assert row.attempts == attempt
        assert "tests.removed_task" in (row.last_error or "")
    assert await relayer.relay_once() == 0
    assert await outbox_rows(state) == []
    assert await relayer.relay_once() == 0  # not tried again

    root = await factory.user(await factory.tenant(), role=Role.VIEWER, platform_admin=True)
    listed = await client.get(
        "/api/platform/jobs/dead", params={"task": "tests.removed_task"}, headers=root.headers
    )
    assert listed.status_code == 200, listed.text
    [dead] = listed.json()["items"]
    assert dead["message_id"] == "msg-of-a-removed-task"
    assert dead["arguments"] == {"run": "x"}
    assert dead["attempts"] == 3
    assert "after 3 attempts" in dead["error"]
    retried = await client.post(f"/api/platform/jobs/dead/{dead['id']}/retry", headers=root.headers)
    assert retried.status_code == 404  # the task is gone: an admin can only discard it
    discarded = await client.delete(f"/api/platform/jobs/dead/{dead['id']}", headers=root.headers)
    assert discarded.status_code == 204


async def test_row_still_within_its_attempts_stays_in_the_outbox(state: AppState):
    async with state.db.transaction() as session:
        session.add(
            JobOutbox(
                message_id="m", task="tests.removed_task", kwargs={}, created_at=utcnow(),
                attempts=0,
            )
        )  # fmt: skip
    relayer = OutboxRelay(
        state.jobs, state.db, after_seconds=0, interval_seconds=0.1, lease_seconds=0,
        max_attempts=state.settings.jobs_outbox_max_attempts,
    )  # fmt: skip
    assert state.settings.jobs_outbox_max_attempts == 10
    for _ in range(9):
        await relayer.relay_once()
    [row] = await outbox_rows(state)
    assert row.attempts == 9
    async with state.db.transaction() as session:
        dead = (await session.execute(select(func.count()).select_from(DeadJob))).scalar()
    assert dead == 0


async def test_rows_of_jobs_sent_together_are_all_deleted_and_each_job_runs_once(
    state: AppState,
):
    """Requests committing at once share a DELETE of their sent rows: none is left for the
    relay (which would send it twice), none is deleted before its job was sent."""
    run = run_id()

    async def one(i: int) -> None:
        async with state.db.transaction() as session:
            enqueue_after_commit(session, probes.record, run=run, label=str(i))

    await asyncio.gather(*(one(i) for i in range(30)))
    await outbox.deleted_sent_rows(state.db.engine)
    assert await outbox_rows(state) == []
    assert await relay(state).relay_once() == 0
    await until(lambda: len(probes.RUNS[run]) == 30)
    await settled(state.jobs)
    assert sorted(int(r["label"]) for r in probes.RUNS[run]) == list(range(30))


async def test_a_failed_send_is_tried_again_after_a_backoff_not_a_whole_lease(state: AppState):
    """The broker refused a row (down): the next attempt comes after RELAY_AFTER doubled per
    attempt, capped by the lease, so the jobs go out soon after the broker is back."""
    async with state.db.transaction() as session:
        session.add(
            JobOutbox(
                message_id="msg-refused",
                task="tests.removed_task",  # refused at every send, as by a broker that is down
                kwargs={"run": "x"},
                created_at=utcnow(),
                attempts=0,
            )
        )
    relayer = OutboxRelay(
        state.jobs, state.db, after_seconds=0.1, interval_seconds=0.1, lease_seconds=60
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10  # well within the 60 s lease
    attempts = 0
    while attempts < 3:
        assert loop.time() < deadline, f"tried {attempts} times only"
        await relayer.relay_once()
        [row] = await outbox_rows(state)
        attempts = row.attempts
        await asyncio.sleep(0.05)
    assert [relayer.backoff(JobOutbox(attempts=n)).total_seconds() for n in (1, 2, 4, 20)] == [
        0.1, 0.2, 0.8, 60,
    ]  # fmt: skip
