"""An API process (`bigfootlive serve`) killed with SIGKILL while chat flows through it and
through a second instance (the test's own app) sharing PostgreSQL and Redis: the survivor keeps
acknowledging, every message either acknowledged is in the history exactly once, and what the
dead one never answered is stored at most once. One of the slow tests (a server process starts
in ~10-60 s on a busy box)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bigfootlive.authz.roles import Role
from bigfootlive.config import Settings
from tests.faults.traffic import ChatTraffic, reconcile
from tests.fixtures.factories import Factory
from tests.fixtures.processes import spawner
from tests.realtime.conftest import create_event
from tests.realtime.test_processes import ServerProcess


@pytest.fixture(params=["postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """Two processes share the database: PostgreSQL (and Redis) only."""
    return str(request.param)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"chat_rate_limit": "10000/second"}


spawn = spawner(ServerProcess)


@pytest.mark.timeout(360)
async def test_api_process_killed_while_chat_flows_loses_and_doubles_nothing(
    settings: Settings,
    factory: Factory,
    client: httpx.AsyncClient,
    spawn: Callable[[], ServerProcess],
    postgres_url: str,
) -> None:
    a = await asyncio.to_thread(spawn)
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    event = await create_event(client, streamer)
    on_b = client  # the surviving instance
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{a.port}", timeout=20) as on_a:
        doomed = ChatTraffic(on_a, streamer, event["id"], label="a", tolerate_disconnects=True)
        survivor = ChatTraffic(on_b, streamer, event["id"], label="b")
        doomed.start()
        survivor.start()
        try:
            await doomed.wait_for_progress(20)
            await survivor.wait_for_progress(20)
            a.kill(signal.SIGKILL)  # mid-request for some of the doomed traffic
            await survivor.wait_for_progress(20)  # the other process serves on
            ready = await on_b.get("/ready")
            assert ready.status_code == 200, ready.text
        finally:
            await doomed.stop()
            await survivor.stop()
        assert doomed.unanswered, "the kill cut no request short"
        for traffic in (doomed, survivor):
            assert not traffic.wrong, traffic.wrong[:5]
            assert not traffic.refused, [r.text for r in traffic.refused[:3]]
        # As the database's owner: row-level security hides every row from a session that
        # names no tenant, as the application role's would be.
        dsn = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
        await reconcile(dsn, doomed)  # also: nothing stored twice, from either process
        await reconcile(dsn, survivor)
        # The history as users read it, on the surviving process: every acknowledged message.
        seen: set[str] = set()
        cursor: str | None = None
        while True:
            page = await on_b.get(
                f"/api/events/{event['id']}/chat",
                params={"limit": 100, **({"cursor": cursor} if cursor else {})},
                headers=streamer.headers,
            )
            assert page.status_code == 200, page.text
            body = page.json()
            seen |= {m["id"] for m in body["items"]}
            cursor = body.get("next_cursor")
            if not cursor or not body["items"]:
                break
        acknowledged = {*doomed.acknowledged.values(), *survivor.acknowledged.values()}
        assert acknowledged <= seen, f"{len(acknowledged - seen)} acknowledged not in history"
