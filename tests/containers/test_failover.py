"""Two managers (two API processes) share one database: one leader at a time, and failover."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from bigfootlive.containers.inprocess import InProcessRuntime
from bigfootlive.containers.manager import ContainerManager
from bigfootlive.containers.subprocess import SubprocessRuntime
from tests.containers.helpers import FAST, armed_event, running, streamer, wait_row


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # The app's own manager is off: the test drives two managers by hand.
    return {**FAST, "container_manager_enabled": False}


async def _until_leader(manager: ContainerManager, within: float = 10.0) -> None:
    for _ in range(int(within / 0.1)):
        if await manager.tick() is not None:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{manager.holder} never became leader")


async def test_only_one_manager_leads_and_the_other_takes_over_when_it_dies(factory, client, state):
    first = ContainerManager(state, InProcessRuntime(state), holder="api-1")
    second = ContainerManager(state, InProcessRuntime(state), holder="api-2")
    event = await armed_event(client, await streamer(factory))
    try:
        report = await first.tick()
        assert report is not None
        assert report.launched == [uuid.UUID(event["id"])]
        assert await second.tick() is None  # follower: does nothing
        await wait_row(state, event["id"], running, tick=first.tick)
        assert await second.runtime.list() == []

        # api-1 dies: its tasks die with it, its lease is not released, nothing is cleaned up.
        for entry in first.runtime._entries.values():
            entry.task.cancel()
        await _until_leader(second, within=FAST["container_lease_ttl_seconds"] + 5)
        row = await wait_row(
            state,
            event["id"],
            lambda r: running(r) and r.restarts == 1,
            tick=second.tick,
            within=FAST["container_heartbeat_timeout_seconds"] + 15,
        )
        assert row.stop_reason is None
        info = await second.runtime.status(uuid.UUID(event["id"]))
        assert info is not None
        assert info.state == "running"
        assert await first.lease.acquire() is False  # the old leader cannot come back
    finally:
        await first.runtime.close()
        await second.shutdown()


async def test_new_leader_adopts_the_old_leaders_worker_processes(factory, client, state, settings):
    first = ContainerManager(state, SubprocessRuntime(settings), holder="api-1")
    second = ContainerManager(state, SubprocessRuntime(settings), holder="api-2")
    event = await armed_event(client, await streamer(factory))
    try:
        await first.tick()
        before = await wait_row(state, event["id"], running, tick=first.tick, within=60)
        pid = (await first.runtime.status(uuid.UUID(event["id"]))).handle
        # api-1 is gone (killed); its worker process lives on.
        await _until_leader(second, within=FAST["container_lease_ttl_seconds"] + 5)
        info = await second.runtime.status(uuid.UUID(event["id"]))
        assert info is not None
        assert info.handle == pid
        assert info.state == "running"
        await second.tick()
        after = await wait_row(state, event["id"], running)
        assert after.handle == before.handle
        assert after.restarts == 0
    finally:
        await second.shutdown()
        first.runtime._procs.clear()
