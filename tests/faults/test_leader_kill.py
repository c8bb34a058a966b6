"""The container manager's leader is a real API process (`bigfootlive serve`) killed with
SIGKILL while chat flows: its lease is not released and its in-process event containers die
with it; the follower (the test's own instance) takes the lease once it runs out and restarts
the event's container, and no acknowledged chat message is lost or doubled. One of the slow
tests (a server process starts in ~10-60 s on a busy box)."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bigfootlive.composition import AppState
from bigfootlive.containers.inprocess import InProcessRuntime
from bigfootlive.containers.manager import ContainerManager
from tests.containers.helpers import FAST, armed_event, running, streamer, wait_row
from tests.faults.traffic import ChatTraffic, reconcile
from tests.fixtures.factories import Factory
from tests.fixtures.processes import spawner
from tests.realtime.test_processes import ServerProcess


@pytest.fixture(params=["postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """The lease and the containers' rows are shared through PostgreSQL."""
    return str(request.param)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {**FAST, "chat_rate_limit": "10000/second"}


class LeaderProcess(ServerProcess):
    def env(self) -> dict[str, str]:
        values = super().env()
        values.update({k.upper(): str(v) for k, v in FAST.items()})
        values["CONTAINER_MANAGER_ENABLED"] = "true"
        values["CONTAINER_RUNTIME"] = "inprocess"
        return values


leader = spawner(LeaderProcess)


@pytest.mark.timeout(360)
async def test_leader_killed_follower_takes_over_and_restarts_the_container(
    state: AppState,
    factory: Factory,
    client: httpx.AsyncClient,
    leader: Callable[[], LeaderProcess],
    postgres_url: str,
) -> None:
    process = await asyncio.to_thread(leader)
    account = await streamer(factory)
    event = await armed_event(client, account)
    # The process leads (it is the only manager) and runs the event's container.
    before = await wait_row(state, event["id"], running, within=60)
    follower = ContainerManager(state, InProcessRuntime(state), holder="survivor")
    traffic = ChatTraffic(client, account, event["id"])
    traffic.start()
    try:
        assert await follower.tick() is None  # the lease is held: a follower does nothing
        await traffic.wait_for_progress(10)
        process.kill(signal.SIGKILL)
        after = await wait_row(
            state,
            event["id"],
            lambda row: running(row) and row.restarts == before.restarts + 1,
            tick=follower.tick,
            within=FAST["container_lease_ttl_seconds"] + FAST["container_heartbeat_timeout_seconds"]
            + 30,
        )  # fmt: skip
        assert after.stop_reason is None
        info = await follower.runtime.status(uuid.UUID(event["id"]))
        assert info is not None
        assert info.state == "running"
        await traffic.wait_for_progress(10)
    finally:
        await traffic.stop()
        await follower.shutdown()
    assert not traffic.wrong, traffic.wrong[:5]
    assert not traffic.refused, [r.text for r in traffic.refused[:3]]
    await reconcile(postgres_url.replace("postgresql+asyncpg://", "postgresql://"), traffic)
