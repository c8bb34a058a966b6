"""The subprocess runtime for real: one `bigfootlive container run` process per event."""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import signal
import uuid
from typing import Any

import psutil
import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError

from bigfootlive.containers.subprocess import SubprocessRuntime
from bigfootlive.models import Event, EventContainer
from tests.containers.helpers import FAST, armed_event, running, stop, streamer, wait_row
from tests.fixtures.polling import until


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        **FAST,
        "container_runtime": "subprocess",
        "container_memory_limit_mb": 1536,
        # Real processes on a loaded 2-core machine: a SIGTERM drain took over 3 s during a full
        # suite run and was taken for a lost heartbeat (a crash and a restart).
        "container_heartbeat_timeout_seconds": 10.0,
        # A worker that sees its event end stops by itself; at 0.5 s the manager's grace ran out
        # first under a full suite's load and the stop was recorded as grace_expired.
        "container_stop_grace_seconds": 5.0,
        "log_level": "INFO",  # the workers' logs, for a failure's message (_worker_log)
    }


@pytest.fixture
async def forking(state):
    """Workers forked from the warm template, as in a deployment that has launched before (the
    template warms at the first launch). Tests about what a worker does, its restarts and its
    end take it; the cold start (a new interpreter per worker) is test_arming_starts_...'s.
    Without it every test started a worker's interpreter and the template's side by side."""
    runtime = state.containers.runtime
    assert runtime.template is not None
    runtime.template.warm()
    await until(lambda: runtime.template.ready, within=120)
    return runtime.template


async def _pid(state, event_id: str) -> int:
    info = await state.containers.runtime.status(uuid.UUID(event_id))
    assert info is not None, "runtime does not know the container"
    return int(info.handle.removeprefix("pid:"))


def _worker_log(state, event_id: str) -> str:
    path = state.containers.runtime._dir / f"{event_id}.log"
    return path.read_text()[-4000:] if path.exists() else "(no worker log)"


async def _gone(pid: int, within: float = 15.0) -> bool:
    for _ in range(int(within * 10)):
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_arming_starts_a_worker_process_with_resource_limits(factory, client, state):
    event = await armed_event(client, await streamer(factory))
    await wait_row(state, event["id"], lambda r: running(r) and r.memory_bytes > 0)
    pid = await _pid(state, event["id"])
    process = psutil.Process(pid)
    assert "container" in process.cmdline()
    assert event["id"] in process.cmdline()
    assert process.rlimit(resource.RLIMIT_AS) == (1536 * 1024 * 1024,) * 2
    assert os.getpgid(pid) == pid  # its own process group: stopping it stops its ffmpeg too


async def test_killed_worker_is_restarted(factory, client, state, forking):
    event = await armed_event(client, await streamer(factory))
    await wait_row(state, event["id"], running)
    pid = await _pid(state, event["id"])
    os.kill(pid, signal.SIGKILL)
    row = await wait_row(state, event["id"], lambda r: r.restarts == 1 and running(r))
    assert row.worker_state["runs"] == 2
    assert await _pid(state, event["id"]) != pid


async def test_sigterm_drains_the_worker_and_it_exits_zero(factory, client, state, forking):
    event = await armed_event(client, await streamer(factory))
    event_id = uuid.UUID(event["id"])
    await wait_row(state, event["id"], running)
    pid = await _pid(state, event["id"])
    runtime = state.containers.runtime
    proc = runtime._procs[event_id]
    assert proc.pid == pid
    os.kill(pid, signal.SIGTERM)
    await asyncio.wait_for(asyncio.shield(proc.reaper), 40)
    assert proc.exit_code == 0
    # A drained worker of a still-armed event is started again at once, and that is no crash:
    # a second run, no restart counted, and the first run's stop kept (the row's own stop
    # fields last only until the relaunch; polling for them once missed them).
    row = await wait_row(
        state, event["id"], lambda r: running(r) and r.worker_state.get("runs") == 2, within=40
    )
    assert row.restarts == 0
    assert row.stop_reason is None
    assert row.worker_state["last_stop"]["reason"] == "terminated"


async def test_worker_exits_when_its_event_ends(factory, client, state, forking):
    account = await streamer(factory)
    event = await armed_event(client, account)
    await wait_row(state, event["id"], running)
    pid = await _pid(state, event["id"])
    assert (await stop(client, account, event)).status_code == 200
    row = await wait_row(state, event["id"], lambda r: r.state == "stopped")
    # Seen once in a few dozen full-suite runs: grace_expired (the worker took over 5 s to
    # stop by itself). Its log (INFO: when it decided to stop and when it had) says where.
    assert row.stop_reason == "event_ended", _worker_log(state, event["id"])
    assert await _gone(pid)


async def test_hung_worker_is_stopped_a_grace_period_after_its_event_ends(
    factory, client, state, forking
):
    account = await streamer(factory)
    event = await armed_event(client, account)
    await wait_row(state, event["id"], running)
    pid = await _pid(state, event["id"])
    try:
        # frozen: it will never notice the end by itself
        await _freeze_outside_a_transaction(state, pid, uuid.UUID(event["id"]))
        assert (await stop(client, account, event)).status_code == 200
        row = await wait_row(state, event["id"], lambda r: r.state == "stopped", within=40)
        assert row.stop_reason == "grace_expired"
        assert await _gone(pid)
    finally:
        with_suppress_kill(pid)


async def test_orphan_worker_of_a_deleted_event_is_reaped(factory, client, state, forking):
    event = await armed_event(client, await streamer(factory))
    await wait_row(state, event["id"], running)
    pid = await _pid(state, event["id"])
    try:
        await _delete_while_frozen(state, pid, uuid.UUID(event["id"]))
        assert await _gone(pid, within=20)
        for _ in range(100):
            if await state.containers.runtime.status(uuid.UUID(event["id"])) is None:
                break
            await asyncio.sleep(0.1)
        assert await state.containers.runtime.status(uuid.UUID(event["id"])) is None
    finally:
        with_suppress_kill(pid)


async def test_a_new_api_process_adopts_running_workers(factory, client, state, settings, forking):
    event = await armed_event(client, await streamer(factory))
    await wait_row(state, event["id"], running)
    pid = await _pid(state, event["id"])
    successor = SubprocessRuntime(settings, keep_workers_on_close=True)
    assert successor.adopt() >= 1
    info = await successor.status(uuid.UUID(event["id"]))
    assert info is not None
    assert info.handle == f"pid:{pid}"
    assert info.state == "running"
    stats = await successor.stats(uuid.UUID(event["id"]))
    assert stats is not None
    assert stats.memory_bytes > 0
    await successor.close()
    assert psutil.pid_exists(pid)


async def _freeze_outside_a_transaction(state, pid: int, event_id: uuid.UUID) -> None:
    """Freeze the worker (SIGSTOP) at a moment it holds no database lock.

    A worker frozen in the middle of its heartbeat transaction would hold its locks forever
    (on SQLite, the whole database's write lock: the API's next write waited out its busy
    timeout and answered 503). So a write that needs the worker's locks is tried with a short
    timeout; when it cannot get them, the worker is thawed and frozen again a moment later.
    """
    for _ in range(30):
        os.kill(pid, signal.SIGSTOP)
        try:
            async with state.db.transaction() as session:
                if session.bind.dialect.name == "postgresql":
                    await session.execute(text("SET LOCAL lock_timeout = '500ms'"))
                else:
                    await session.execute(text("PRAGMA busy_timeout = 500"))
                await session.execute(
                    update(EventContainer)
                    .where(EventContainer.event_id == event_id)
                    .values(handle=EventContainer.handle)
                )
            return
        except DBAPIError:
            os.kill(pid, signal.SIGCONT)
            await asyncio.sleep(0.2)
    raise AssertionError("could not freeze the worker outside a transaction")


async def _delete_while_frozen(state, pid: int, event_id: uuid.UUID) -> None:
    """Freeze the worker (so only the reaper can end it), then delete its event."""
    await _freeze_outside_a_transaction(state, pid, event_id)
    async with state.db.transaction() as session:
        await session.execute(delete(Event).where(Event.id == event_id))


def with_suppress_kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


async def test_a_worker_forked_from_the_template_runs_and_stops_like_a_started_one(
    factory, client, state
):
    runtime = state.containers.runtime
    assert runtime.template is not None
    runtime.template.warm()
    await until(lambda: runtime.template.ready, within=120)
    event = await armed_event(client, await streamer(factory))
    await wait_row(state, event["id"], lambda r: running(r) and r.memory_bytes > 0)
    pid = await _pid(state, event["id"])
    proc = runtime._procs[uuid.UUID(event["id"])]
    assert proc.forked
    process = psutil.Process(pid)
    # what `adopt` and the operators look for, the same limits, its own process group
    assert "container" in process.cmdline()
    assert event["id"] in process.cmdline()
    assert process.rlimit(resource.RLIMIT_AS) == (1536 * 1024 * 1024,) * 2
    assert os.getpgid(pid) == pid
    os.kill(pid, signal.SIGTERM)
    await asyncio.wait_for(proc.reaper, 30)
    assert proc.exit_code == 0  # drained, as the template saw it exit


async def test_closing_the_runtime_removes_its_directory_unless_workers_stay(settings):
    runtime = SubprocessRuntime(settings)
    assert (runtime._dir / "settings.json").is_file()
    await runtime.close()
    assert not runtime._dir.exists()  # the settings file (secrets) and the logs are gone
    staying = SubprocessRuntime(settings, keep_workers_on_close=True)
    try:
        await staying.close()
        assert staying._dir.is_dir()  # workers left to be adopted still log there
    finally:
        shutil.rmtree(staying._dir)
