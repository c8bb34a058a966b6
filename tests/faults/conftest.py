"""Fault injection: the app on servers the test starts for itself (tests/fixtures/own_servers),
so that it may restart them while requests flow. Never the machine's shared servers."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from bigfootlive.app import Loop, create_app
from bigfootlive.authz.roles import Role
from bigfootlive.composition import AppState
from bigfootlive.migrations import upgrade_database
from tests.conftest import DEFAULT_LOOPS, TestSettings, base_settings
from tests.faults.deliveries import FLOW_SETTINGS, Deliveries, start_deliveries
from tests.fixtures import services
from tests.fixtures.factories import Account, Factory
from tests.fixtures.own_servers import PostgresCluster, RedisServer, postgres_bindir, scratch_dir

DATABASE = "bigfootlive"


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    path = scratch_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def primary(scratch: Path) -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of the test's own, with a migrated database."""
    bindir = postgres_bindir()
    services.require(bindir is not None, "PostgreSQL server programs (initdb, pg_ctl)")
    assert bindir is not None
    cluster = PostgresCluster(bindir, scratch / "primary")
    cluster.init()
    cluster.start()
    try:

        async def create() -> None:
            conn = await asyncpg.connect(cluster.url(driver="postgresql"))
            try:
                await conn.execute(f'CREATE DATABASE "{DATABASE}"')
            finally:
                await conn.close()

        asyncio.run(create())
        asyncio.run(upgrade_database(cluster.url(DATABASE)))
        yield cluster
    finally:
        cluster.stop("immediate")


@pytest.fixture(scope="module")
def replica(scratch: Path, primary: PostgresCluster) -> Iterator[PostgresCluster]:
    """A streaming read replica of `primary` (pg_basebackup -R), on its own port."""
    standby = primary.replica(scratch / "replica")
    standby.start()
    yield standby
    standby.stop("immediate")


@pytest.fixture
def own_redis(scratch: Path) -> Iterator[RedisServer]:
    services.require(shutil.which("redis-server") is not None, "redis-server")
    server = RedisServer(scratch / f"redis-{uuid.uuid4().hex[:6]}")
    server.start()
    yield server
    server.stop()


def own_settings(
    tmp_path: Path, smtp: services.SMTPSink, database_url: str, redis_url: str, **extra: Any
) -> TestSettings:
    values = base_settings(
        tmp_path,
        smtp,
        database_url=database_url,
        redis_url=redis_url,
        chat_rate_limit="10000/second",
        database_pool_size=5,
        database_max_overflow=5,
        **extra,
    )
    return TestSettings(**values)


@pytest.fixture
def own_overrides() -> dict[str, Any]:
    """Override in a test module to add settings (e.g. DATABASE_READ_URL)."""
    return {}


@pytest.fixture
def own_loops() -> frozenset[Loop]:
    """Override in a test module for more background loops (e.g. the outbox relay's)."""
    return DEFAULT_LOOPS


@pytest.fixture
def own_broker(scratch: Path) -> Iterator[RedisServer]:
    """A job broker of the test's own: a Redis apart from the cache's, persistent (every
    write in the append-only file) as a broker must be."""
    services.require(shutil.which("redis-server") is not None, "redis-server")
    server = RedisServer(scratch / f"broker-{uuid.uuid4().hex[:6]}", persistent=True)
    server.start()
    yield server
    server.stop()


def flow_overrides(broker_url: str) -> dict[str, Any]:
    """Settings for webhooks and beacons flowing through jobs run in the app (`deliveries`)."""
    return {**FLOW_SETTINGS, "broker_url": broker_url, "jobs_queue_prefix": _prefix()}


def _prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def own_app(
    tmp_path: Path,
    smtp_sink: services.SMTPSink,
    primary: PostgresCluster,
    own_redis: RedisServer,
    own_overrides: dict[str, Any],
    own_loops: frozenset[Loop],
) -> AsyncIterator[FastAPI]:
    settings = own_settings(
        tmp_path, smtp_sink, primary.url(DATABASE), own_redis.url, **own_overrides
    )
    application = create_app(settings, loops=own_loops)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


@pytest.fixture
async def own_client(own_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(
        app=own_app, client=("203.0.113.7", 40000), raise_app_exceptions=False
    )
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", timeout=20
    ) as http:
        yield http


@pytest.fixture
def own_state(own_app: FastAPI) -> AppState:
    result: AppState = own_app.state.bigfoot
    return result


@pytest.fixture
async def streamer(own_state: AppState, own_client: httpx.AsyncClient) -> Account:
    factory = Factory(own_state, own_client)
    tenant = await factory.tenant()
    return await factory.user(tenant, role=Role.STREAMER)


@pytest.fixture
async def deliveries(
    own_state: AppState, own_client: httpx.AsyncClient, streamer: Account
) -> AsyncIterator[Deliveries]:
    """Webhook deliveries (an admin of the streamer's tenant creates users) and beacons (for a
    live event of the streamer's), not started; needs `flow_overrides` in `own_overrides`."""
    admin = await Factory(own_state, own_client).user(streamer.tenant, role=Role.ADMIN)
    flows = await start_deliveries(own_client, own_state, streamer, admin)
    yield flows
    flows.receiver.close()
