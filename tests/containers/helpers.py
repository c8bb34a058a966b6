"""Shared steps for the container tests: events over the API, waiting on container rows."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from bigfootlive.authz.roles import Role
from bigfootlive.composition import AppState
from bigfootlive.containers import repository as repo
from bigfootlive.models import EventContainer

FAST = {
    "container_reconcile_interval_seconds": 0.2,
    "container_heartbeat_interval_seconds": 0.2,
    "container_heartbeat_timeout_seconds": 3.0,
    "container_restart_backoff_seconds": 0.2,
    "container_restart_backoff_max_seconds": 1.0,
    "container_lease_ttl_seconds": 1.0,
    "container_stop_grace_seconds": 0.5,
    "container_health_interval_seconds": 0.5,
    "container_rollup_interval_seconds": 0.5,
}


async def streamer(factory: Any, tenant: Any = None) -> Any:
    tenant = tenant or await factory.tenant()
    return await factory.user(tenant, role=Role.STREAMER)


async def create_event(client: httpx.AsyncClient, account: Any, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/events", json={"title": "Launch", **fields}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def start(client: httpx.AsyncClient, account: Any, event: dict[str, Any]) -> httpx.Response:
    return await client.post(f"/api/events/{event['id']}/start", headers=account.headers)


async def stop(client: httpx.AsyncClient, account: Any, event: dict[str, Any]) -> httpx.Response:
    return await client.post(f"/api/events/{event['id']}/stop", headers=account.headers)


async def armed_event(client: httpx.AsyncClient, account: Any, **fields: Any) -> dict[str, Any]:
    event = await create_event(client, account, **fields)
    response = await start(client, account, event)
    assert response.status_code == 200, response.text
    return event


async def row_of(state: AppState, event_id: str | uuid.UUID) -> EventContainer | None:
    async with state.db.transaction() as session:
        return await repo.get_container(session, uuid.UUID(str(event_id)))


async def wait_row(
    state: AppState,
    event_id: str | uuid.UUID,
    predicate: Callable[[EventContainer], bool],
    *,
    within: float = 20.0,
    tick: Callable[[], Any] | None = None,
) -> EventContainer:
    """Poll the container row until `predicate` holds (running `tick` between polls)."""
    deadline = asyncio.get_running_loop().time() + within
    row = None
    while asyncio.get_running_loop().time() < deadline:
        if tick is not None:
            await tick()
        row = await row_of(state, event_id)
        if row is not None and predicate(row):
            return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"container row never matched; last: {row and vars(row)}")


def running(row: EventContainer) -> bool:
    return row.state == "running" and row.last_heartbeat_at is not None
