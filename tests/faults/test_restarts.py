"""Restart Redis, then PostgreSQL, under the app while chat, webhook deliveries and player
beacons flow: meanwhile clear 503s with Retry-After (never a hang or a 500) and /ready names the
failing dependency; afterwards the app serves again without a restart, every acknowledged
message is stored exactly once, every acknowledged webhook event delivered under one delivery
id, and the analytics minutes hold exactly the acknowledged beacons.

The jobs (deliveries, roll-ups) run in the app, on a persistent Redis broker of their own (as
docs/operations.md asks): the cache's Redis restarts empty."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from bigfootlive.app import Loop
from tests.conftest import DEFAULT_LOOPS
from tests.faults.conftest import DATABASE, flow_overrides
from tests.faults.deliveries import Deliveries
from tests.faults.traffic import ChatTraffic, check_refusal, reconcile
from tests.fixtures.factories import Account
from tests.fixtures.own_servers import PostgresCluster, RedisServer


@pytest.fixture
def own_overrides(own_broker: RedisServer) -> dict[str, Any]:
    return flow_overrides(own_broker.url)


@pytest.fixture
def own_loops() -> frozenset[Loop]:
    return DEFAULT_LOOPS | {Loop.JOB_SCHEDULER}  # the outbox relay


async def _event(client: httpx.AsyncClient, account: Account) -> str:
    response = await client.post(
        "/api/events", json={"title": "Town hall"}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _ready_reports(client: httpx.AsyncClient, check: str) -> dict[str, str]:
    response = await client.get("/ready")
    assert response.status_code == 503, response.text
    checks: dict[str, str] = response.json()["checks"]
    assert checks[check].startswith("error"), checks
    return checks


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/ready")).status_code == 200


async def _wait(condition, within: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_redis_restart_under_chat_traffic(
    own_client: httpx.AsyncClient,
    streamer: Account,
    own_redis: RedisServer,
    primary: PostgresCluster,
    deliveries: Deliveries,
) -> None:
    event_id = await _event(own_client, streamer)
    traffic = ChatTraffic(own_client, streamer, event_id)
    traffic.start()
    deliveries.start()
    try:
        await _progress(traffic, deliveries)
        own_redis.stop()
        checks = await _ready_reports(own_client, "cache")
        assert checks["database"] == "ok"
        await _wait(lambda: _has_refusal(traffic), within=30)
        own_redis.start()
        await _wait(lambda: _ready(own_client))
        await _progress(traffic, deliveries)
    finally:
        await traffic.stop()
        await deliveries.stop()
    assert not traffic.wrong + deliveries.wrong, (traffic.wrong + deliveries.wrong)[:5]
    codes = {check_refusal(r)["code"] for r in traffic.refused + deliveries.refused}
    assert codes <= {"cache_unavailable"}, codes
    await reconcile(primary.url(DATABASE, driver="postgresql"), traffic)
    await deliveries.reconcile(primary.url(DATABASE, driver="postgresql"))


async def test_postgres_restart_under_chat_traffic(
    own_client: httpx.AsyncClient,
    streamer: Account,
    primary: PostgresCluster,
    deliveries: Deliveries,
) -> None:
    event_id = await _event(own_client, streamer)
    traffic = ChatTraffic(own_client, streamer, event_id)
    traffic.start()
    deliveries.start()
    try:
        await _progress(traffic, deliveries)
        primary.stop("fast")
        checks = await _ready_reports(own_client, "database")
        assert checks["cache"] == "ok"
        await _wait(lambda: _has_refusal(traffic), within=30)
        primary.start()
        await _wait(lambda: _ready(own_client))
        await _progress(traffic, deliveries)
    finally:
        await traffic.stop()
        await deliveries.stop()
    assert not traffic.wrong + deliveries.wrong, (traffic.wrong + deliveries.wrong)[:5]
    codes = {check_refusal(r)["code"] for r in traffic.refused + deliveries.refused}
    assert codes <= {"database_unavailable"}, codes
    await reconcile(primary.url(DATABASE, driver="postgresql"), traffic)
    await deliveries.reconcile(primary.url(DATABASE, driver="postgresql"))


async def _has_refusal(traffic: ChatTraffic) -> bool:
    return bool(traffic.refused)


async def _progress(traffic: ChatTraffic, deliveries: Deliveries) -> None:
    await traffic.wait_for_progress()
    await deliveries.wait_for_progress()
