"""The embedded runtime under the manager started by the app: workers as asyncio tasks."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from typing import Any

import pytest

from bigfootlive.authz.roles import Role
from bigfootlive.containers.moderation import inbound_channel, verdict_channel
from bigfootlive.db import utcnow
from tests.containers.helpers import (
    FAST,
    armed_event,
    create_event,
    row_of,
    running,
    start,
    stop,
    streamer,
    wait_row,
)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        **FAST,
        "container_runtime": "inprocess",
        "chat_blocked_terms": "spoiler,scam",
        # A worker that sees its event end stops by itself; at 0.5 s the manager's grace ran
        # out first under a full suite's load and the stop was recorded as grace_expired.
        "container_stop_grace_seconds": 5.0,
    }


async def test_arming_an_event_starts_its_container(factory, client, state):
    account = await streamer(factory)
    event = await armed_event(client, account)
    row = await wait_row(state, event["id"], running)
    assert row.runtime == "inprocess"
    assert str(row.tenant_id) == event["tenant_id"]
    info = await state.containers.runtime.status(uuid.UUID(event["id"]))
    assert info is not None
    assert info.state == "running"


async def test_scheduled_event_gets_no_container_until_prewarm_window(factory, client, state):
    account = await streamer(factory)
    later = (utcnow() + dt.timedelta(hours=3)).isoformat()
    soon = (utcnow() + dt.timedelta(seconds=60)).isoformat()
    far = await create_event(client, account, scheduled_start=later)
    near = await create_event(client, account, scheduled_start=soon)
    await wait_row(state, near["id"], running)
    assert await row_of(state, far["id"]) is None


async def test_container_stops_after_its_event_ends(factory, client, state):
    account = await streamer(factory)
    event = await armed_event(client, account)
    await wait_row(state, event["id"], running)
    assert (await stop(client, account, event)).status_code == 200
    row = await wait_row(state, event["id"], lambda r: r.state == "stopped")
    assert row.stop_reason == "event_ended"
    assert row.container_seconds > 0
    deadline = asyncio.get_running_loop().time() + 10
    while await state.containers.runtime.status(uuid.UUID(event["id"])) is not None:
        assert asyncio.get_running_loop().time() < deadline, "the runtime kept the worker"
        await asyncio.sleep(0.05)


async def test_crashed_container_is_restarted_with_backoff(factory, client, state):
    account = await streamer(factory)
    event = await armed_event(client, account)
    first = await wait_row(state, event["id"], running)
    entry = state.containers.runtime._entries[uuid.UUID(event["id"])]
    entry.task.cancel()  # the worker dies without draining
    row = await wait_row(state, event["id"], lambda r: r.restarts == 1 and running(r))
    assert row.handle != first.handle
    assert row.worker_state["runs"] == 2


async def test_container_whose_heartbeat_stopped_is_replaced(factory, client, state):
    account = await streamer(factory)
    event = await armed_event(client, account)
    await wait_row(state, event["id"], running)
    # The worker vanishes without a trace (its node died): only its row and heartbeat remain.
    entry = state.containers.runtime._entries.pop(uuid.UUID(event["id"]))
    entry.task.cancel()
    stale = await wait_row(state, event["id"], lambda r: r.state == "crashed")
    assert stale.stop_reason == "heartbeat_lost"
    age = (stale.stopped_at - stale.last_heartbeat_at).total_seconds()
    assert age >= FAST["container_heartbeat_timeout_seconds"]
    row = await wait_row(state, event["id"], lambda r: r.restarts == 1 and running(r))
    assert row.worker_state["runs"] == 2


async def test_tenant_capacity_limit_refuses_start_with_409(factory, client, state, settings):
    settings.container_max_per_tenant = 1
    account = await streamer(factory)
    await armed_event(client, account)
    second = await create_event(client, account)
    response = await start(client, account, second)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "tenant_container_limit"
    listed = await client.get(f"/api/events/{second['id']}", headers=account.headers)
    assert listed.json()["status"] == "scheduled"


async def test_node_capacity_limit_refuses_start_with_429(factory, client, state, settings):
    settings.container_max_per_node = 1
    await armed_event(client, await streamer(factory))
    other = await streamer(factory)
    event = await create_event(client, other)
    response = await start(client, other, event)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "node_container_capacity"
    assert int(response.headers["Retry-After"]) >= 1


async def test_stats_show_each_container_to_platform_and_tenant_admins(factory, client, state):
    tenant_a, tenant_b = await factory.tenant(), await factory.tenant()
    event_a = await armed_event(client, await streamer(factory, tenant_a))
    event_b = await armed_event(client, await streamer(factory, tenant_b))
    await wait_row(state, event_a["id"], lambda r: running(r) and r.container_seconds > 0)
    await wait_row(state, event_b["id"], running)
    root = await factory.user(tenant_a, role=Role.ADMIN, platform_admin=True)
    admin_b = await factory.user(tenant_b, role=Role.ADMIN)

    everything = (await client.get("/api/containers/stats", headers=root.headers)).json()
    ids = {item["event_id"] for item in everything["items"]}
    assert {event_a["id"], event_b["id"]} <= ids
    item = next(i for i in everything["items"] if i["event_id"] == event_a["id"])
    assert item["state"] == "running"
    assert item["uptime_seconds"] > 0
    assert item["restarts"] == 0
    assert item["tenant_id"] == event_a["tenant_id"]
    assert item["container_seconds"] > 0
    assert "cpu_percent" in item
    assert "memory_bytes" in item
    usage = {u["tenant_id"]: u for u in everything["usage"]}
    assert usage[event_a["tenant_id"]]["container_seconds"] > 0

    own = (await client.get("/api/containers/stats", headers=admin_b.headers)).json()
    assert [i["event_id"] for i in own["items"]] == [event_b["id"]]
    assert [u["tenant_id"] for u in own["usage"]] == [event_b["tenant_id"]]


async def test_stats_are_refused_to_streamers(factory, client):
    account = await streamer(factory)
    response = await client.get("/api/containers/stats", headers=account.headers)
    assert response.status_code == 403


async def test_container_auto_moderates_its_event_chat(factory, client, state):
    event = await armed_event(client, await streamer(factory))
    await wait_row(state, event["id"], running)
    verdicts: list[dict[str, Any]] = []

    async def collect(payload: bytes) -> None:
        verdicts.append(json.loads(payload))

    unsubscribe = await state.pubsub.subscribe(verdict_channel(event["id"]), collect)
    try:
        for i, text in enumerate(["hello all", "this is a SCAM link"]):
            message = {"message_id": f"m{i}", "user_id": "u1", "text": text}
            await state.pubsub.publish(inbound_channel(event["id"]), json.dumps(message).encode())
        for _ in range(50):
            if len(verdicts) == 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await unsubscribe()
    by_id = {v["message_id"]: v for v in verdicts}
    assert by_id["m0"]["action"] == "allow"
    assert by_id["m1"] == {
        "message_id": "m1",
        "user_id": "u1",
        "action": "hide",
        "reason": "blocked_term",
    }
    row = await wait_row(
        state, event["id"], lambda r: r.worker_state.get("moderation", {}).get("hidden") == 1
    )
    assert row.worker_state["moderation"]["checked"] == 2


async def test_chat_the_container_flags_is_hidden_from_viewers_and_audited(factory, client, state):
    owner = await streamer(factory)
    event = await armed_event(client, owner)
    await wait_row(state, event["id"], running)
    viewer = await factory.user(owner.tenant, role=Role.VIEWER)
    admin = await factory.user(owner.tenant, role=Role.ADMIN)
    chat_url = f"/api/events/{event['id']}/chat"
    fine = await client.post(chat_url, json={"body": "hello all"}, headers=viewer.headers)
    flagged = await client.post(
        chat_url, json={"body": "this is a SCAM link"}, headers=viewer.headers
    )
    assert fine.status_code == flagged.status_code == 201, flagged.text

    async def history() -> list[str]:
        page = await client.get(chat_url, headers=owner.headers)
        return [m["id"] for m in page.json()["items"]]

    for _ in range(100):  # the container reads the message, flags it, the chat domain hides it
        if await history() == [fine.json()["id"]]:
            break
        await asyncio.sleep(0.05)
    assert await history() == [fine.json()["id"]]
    audit = await client.get(
        "/api/auth/audit",
        params={"scope": "tenant", "action": "chat.auto_moderation"},
        headers=admin.headers,
    )
    [record] = audit.json()["items"]
    assert record["target_id"] == flagged.json()["id"]
    assert record["details"]["reason"] == "blocked_term"
