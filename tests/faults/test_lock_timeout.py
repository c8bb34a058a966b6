"""A request that waits for a lock someone else holds (a migration, a long transaction) answers
503 database_busy with Retry-After once DATABASE_LOCK_TIMEOUT_MS has passed, instead of hanging,
and goes through once the lock is released."""

from __future__ import annotations

import time
from typing import Any

import asyncpg
import httpx
import pytest

from tests.faults.conftest import DATABASE
from tests.faults.traffic import check_refusal
from tests.fixtures.factories import Account
from tests.fixtures.own_servers import PostgresCluster


@pytest.fixture
def own_overrides() -> dict[str, Any]:
    return {"database_lock_timeout_ms": 300}


async def test_a_held_lock_answers_503_database_busy_not_a_hang(
    own_client: httpx.AsyncClient, streamer: Account, primary: PostgresCluster
) -> None:
    holder = await asyncpg.connect(primary.url(DATABASE, driver="postgresql"))
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        response = await own_client.post(
            "/api/events", json={"title": "Blocked"}, headers=streamer.headers
        )
        assert time.monotonic() - started < 10
        assert check_refusal(response)["code"] == "database_busy"
        await transaction.rollback()
    finally:
        await holder.close()
    response = await own_client.post(
        "/api/events", json={"title": "Free"}, headers=streamer.headers
    )
    assert response.status_code == 201, response.text
