"""`containers` in the platform stats: event containers running now, from the manager's rows."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from bigfootlive.authz.roles import Role
from bigfootlive.db import utcnow
from bigfootlive.models import EventContainer
from tests.containers.helpers import FAST

WITHOUT_MANAGER = {"container_manager_enabled": False}
WITH_MANAGER = {**FAST, "container_runtime": "inprocess"}


async def event_of(factory, client, tenant) -> tuple[uuid.UUID, uuid.UUID]:
    owner = await factory.user(tenant, role=Role.STREAMER)
    created = await client.post("/api/events", json={"title": "Show"}, headers=owner.headers)
    assert created.status_code == 201, created.text
    return uuid.UUID(created.json()["id"]), tenant.id


async def platform_containers(client, headers) -> tuple[int, int]:
    stats = await client.get("/api/platform/stats", headers=headers)
    assert stats.status_code == 200, stats.text
    platform = await client.get("/api/analytics/platform", headers=headers)
    assert platform.status_code == 200, platform.text
    return stats.json()["containers"], platform.json()["stats"]["containers"]


@pytest.mark.parametrize("settings_overrides", [WITHOUT_MANAGER])
async def test_platform_stats_count_running_containers_of_every_tenant(factory, client, state):
    acme, globex = await factory.tenant(), await factory.tenant()
    root = await factory.user(acme, platform_admin=True)
    assert await platform_containers(client, root.headers) == (0, 0)
    rows = [
        (acme, "running"),
        (acme, "starting"),
        (acme, "stopped"),
        (globex, "running"),
        (globex, "crashed"),
        (globex, "running"),
    ]
    events = [await event_of(factory, client, tenant) for tenant, _ in rows]
    async with state.db.transaction() as session:
        for (event_id, tenant_id), (_, container_state) in zip(events, rows, strict=True):
            session.add(
                EventContainer(
                    tenant_id=tenant_id,
                    event_id=event_id,
                    runtime="inprocess",
                    handle=uuid.uuid4().hex,
                    state=container_state,
                    started_at=utcnow(),
                    worker_state={},
                )
            )
    assert await platform_containers(client, root.headers) == (3, 3)


@pytest.mark.loops("container_manager")
@pytest.mark.parametrize("settings_overrides", [WITH_MANAGER])
async def test_platform_stats_follow_a_container_from_start_to_stop(factory, client, state):
    tenant = await factory.tenant()
    root = await factory.user(tenant, platform_admin=True)
    owner = await factory.user(tenant, role=Role.STREAMER)
    created = await client.post("/api/events", json={"title": "Show"}, headers=owner.headers)
    event_id = created.json()["id"]

    async def containers_become(expected: int) -> None:
        for _ in range(100):
            if await platform_containers(client, root.headers) == (expected, expected):
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"containers never became {expected}")

    await containers_become(0)
    started = await client.post(f"/api/events/{event_id}/start", headers=owner.headers)
    assert started.status_code == 200, started.text
    await containers_become(1)
    stopped = await client.post(f"/api/events/{event_id}/stop", headers=owner.headers)
    assert stopped.status_code == 200, stopped.text
    await containers_become(0)
