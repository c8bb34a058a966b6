"""Two API processes (`bigfootlive serve`) on the test's own primary, its streaming replica
(DATABASE_READ_URL) and its own Redis: with the replica's replay paused, what one process
writes the other reads back at once (fresh reads go to the primary) while both processes'
reports lag until replay resumes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from bigfootlive.config import Settings
from tests.faults.conftest import DATABASE
from tests.fixtures.factories import Account
from tests.fixtures.own_servers import PostgresCluster
from tests.realtime.test_processes import ServerProcess


class ReplicaServer(ServerProcess):
    def env(self) -> dict[str, str]:
        values = super().env()
        values["DATABASE_READ_URL"] = self.settings.database_read_url or ""
        return values


@pytest.fixture
def own_overrides(replica: PostgresCluster) -> dict[str, Any]:
    return {"database_read_url": replica.url(DATABASE)}


@pytest.fixture
def servers(own_app: FastAPI, tmp_path: Path) -> Iterator[Callable[[], ReplicaServer]]:
    settings: Settings = own_app.state.settings
    started: list[ReplicaServer] = []

    def spawn() -> ReplicaServer:
        server = ReplicaServer(settings, tmp_path)
        started.append(server)
        server.start()
        return server

    yield spawn
    for server in started:
        server.stop()


@pytest.fixture
async def paused(replica: PostgresCluster) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(replica.url(DATABASE, driver="postgresql"))
    yield conn
    await conn.execute("SELECT pg_wal_replay_resume()")
    await conn.close()


async def _titles(http: httpx.AsyncClient, account: Account) -> set[str]:
    response = await http.get("/api/analytics/dashboard", headers=account.headers)
    assert response.status_code == 200, response.text
    return {event["title"] for event in response.json()["events"]}


@pytest.mark.timeout(360)  # two server processes start in ~10-60 s each on a busy box
async def test_two_processes_read_fresh_from_the_primary_and_reports_from_the_replica(
    servers: Callable[[], ReplicaServer], streamer: Account, paused: asyncpg.Connection
) -> None:
    a, b = servers(), servers()
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{a.port}", timeout=20) as on_a,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{b.port}", timeout=20) as on_b,
    ):
        ready = (await on_a.get("/ready")).json()
        assert ready["checks"]["database_replica"] == "ok", ready
        await paused.execute("SELECT pg_wal_replay_pause()")
        created = await on_a.post("/api/events", json={"title": "Fresh"}, headers=streamer.headers)
        assert created.status_code == 201, created.text
        event_id = created.json()["id"]
        read = await on_b.get(f"/api/events/{event_id}", headers=streamer.headers)
        assert read.status_code == 200, read.text
        for http in (on_a, on_b):
            assert "Fresh" not in await _titles(http, streamer)
        await paused.execute("SELECT pg_wal_replay_resume()")
        for http in (on_a, on_b):
            for _ in range(200):
                if "Fresh" in await _titles(http, streamer):
                    break
                await asyncio.sleep(0.05)
            assert "Fresh" in await _titles(http, streamer)
