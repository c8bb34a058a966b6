"""DATABASE_READ_URL on a real streaming replica (pg_basebackup -R of the test's own primary):
analytics and report reads are served by the replica, reads that must be fresh (sign-in, the
event just created, chat) by the primary. Proven by pausing the replica's WAL replay: writes go
on and are read back at once, while the report does not see them until replay resumes; in this
process, and across two API processes (`bigfootlive serve`) on the same primary, replica and
Redis, where what one process writes the other reads back at once.

One primary and one replica serve the whole module (they take seconds to make); each test
works in tenants of its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from bigfootlive.authz.roles import Role
from bigfootlive.composition import AppState
from bigfootlive.config import Settings
from tests.faults.conftest import DATABASE
from tests.fixtures.factories import Account, Factory
from tests.fixtures.own_servers import PostgresCluster
from tests.fixtures.processes import spawner
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
def settings(own_app: FastAPI) -> Settings:
    """The test's own app's (primary, replica, Redis): the processes' too."""
    result: Settings = own_app.state.settings
    return result


servers = spawner(ReplicaServer)


@pytest.fixture
async def paused(replica: PostgresCluster) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the replica; replay is resumed at the end whatever happens."""
    conn = await asyncpg.connect(replica.url(DATABASE, driver="postgresql"))
    yield conn
    await conn.execute("SELECT pg_wal_replay_resume()")
    await conn.close()


async def test_report_reads_go_to_the_replica_and_fresh_reads_to_the_primary(
    own_state: AppState, own_client: httpx.AsyncClient, streamer: Account
) -> None:
    async with own_state.db.read_sessionmaker() as session:
        assert (await session.execute(text("SELECT pg_is_in_recovery()"))).scalar() is True
    async with own_state.db.sessionmaker() as session:
        assert (await session.execute(text("SELECT pg_is_in_recovery()"))).scalar() is False
    ready = (await own_client.get("/ready")).json()
    assert ready["checks"]["database_replica"] == "ok", ready


async def _dashboard_titles(client: httpx.AsyncClient, account: Account) -> set[str]:
    response = await client.get("/api/analytics/dashboard", headers=account.headers)
    assert response.status_code == 200, response.text
    return {event["title"] for event in response.json()["events"]}


async def test_a_lagging_replica_delays_reports_but_never_fresh_reads(
    own_state: AppState,
    own_client: httpx.AsyncClient,
    streamer: Account,
    paused: asyncpg.Connection,
) -> None:
    headers = streamer.headers
    first = await own_client.post("/api/events", json={"title": "Before"}, headers=headers)
    assert first.status_code == 201, first.text
    for _ in range(200):  # the replica has caught up with everything so far
        if "Before" in await _dashboard_titles(own_client, streamer):
            break
        await asyncio.sleep(0.05)
    assert "Before" in await _dashboard_titles(own_client, streamer)

    await paused.execute("SELECT pg_wal_replay_pause()")
    # Written while the replica stands still: a new user signs in, creates an event, chats.
    factory = Factory(own_state, own_client)
    late = await factory.user(streamer.tenant, role=Role.STREAMER)
    created = await own_client.post("/api/events", json={"title": "During"}, headers=late.headers)
    assert created.status_code == 201, created.text
    event_id = created.json()["id"]
    fresh = await own_client.get(f"/api/events/{event_id}", headers=late.headers)
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["title"] == "During"
    said = await own_client.post(
        f"/api/events/{event_id}/chat", json={"body": "hello"}, headers=late.headers
    )
    assert said.status_code == 201, said.text
    history = await own_client.get(f"/api/events/{event_id}/chat", headers=late.headers)
    assert [m["body"] for m in history.json()["items"]] == ["hello"]
    # ... but the report, served by the replica, does not know the event yet
    assert "During" not in await _dashboard_titles(own_client, late)

    await paused.execute("SELECT pg_wal_replay_resume()")
    for _ in range(200):
        if "During" in await _dashboard_titles(own_client, late):
            break
        await asyncio.sleep(0.05)
    assert "During" in await _dashboard_titles(own_client, late)


@pytest.mark.timeout(360)  # two server processes start in ~10-60 s each on a busy box
async def test_two_processes_read_fresh_from_the_primary_and_reports_from_the_replica(
    servers: Callable[[], ReplicaServer], streamer: Account, paused: asyncpg.Connection
) -> None:
    # started side by side: each is an interpreter importing the app, one per core
    a, b = await asyncio.gather(asyncio.to_thread(servers), asyncio.to_thread(servers))
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
            assert "Fresh" not in await _dashboard_titles(http, streamer)
        await paused.execute("SELECT pg_wal_replay_resume()")
        for http in (on_a, on_b):
            for _ in range(200):
                if "Fresh" in await _dashboard_titles(http, streamer):
                    break
                await asyncio.sleep(0.05)
            assert "Fresh" in await _dashboard_titles(http, streamer)
