"""The event state machine over the API: legal moves, every illegal one a 409, races, pub/sub."""

from __future__ import annotations

import asyncio
import json

import pytest

from bigfootlive.authz.roles import Role
from bigfootlive.events import access, keys, lifecycle
from bigfootlive.models import Event
from tests.fixtures.polling import until


async def _streamer(factory):
    tenant = await factory.tenant()
    return await factory.user(tenant, role=Role.STREAMER)


async def _create(client, account, **fields):
    response = await client.post(
        "/api/events", json={"title": "Launch", **fields}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _event(state, body) -> Event:
    import uuid

    async with state.db.transaction() as session:
        return await access.get_event(session, uuid.UUID(body["tenant_id"]), uuid.UUID(body["id"]))


async def _publish(state, body, publisher="client-1") -> Event:
    async with state.db.transaction() as session:
        event = await _event_in(session, body)
        return await lifecycle.publisher_connected(state, session, event, publisher)


async def _unpublish(state, body, publisher="client-1") -> Event | None:
    async with state.db.transaction() as session:
        event = await _event_in(session, body)
        return await lifecycle.publisher_disconnected(state, session, event, publisher)


async def _event_in(session, body) -> Event:
    import uuid

    return await access.get_event(session, uuid.UUID(body["tenant_id"]), uuid.UUID(body["id"]))


async def test_create_returns_key_once_and_event_starts_scheduled(factory, client):
    streamer = await _streamer(factory)
    body = await _create(client, streamer, visibility="tenant", latency_mode="low")
    assert body["status"] == "scheduled"
    assert body["ingest"]["stream_key"].startswith("sk_")
    assert body["ingest"]["stream_key"] not in json.dumps(
        {k: body[k] for k in body if k != "ingest"}
    )
    fetched = await client.get(f"/api/events/{body['id']}", headers=streamer.headers)
    assert fetched.status_code == 200
    assert body["ingest"]["stream_key"] not in fetched.text


async def test_stream_key_is_encrypted_at_rest(factory, client, state):
    streamer = await _streamer(factory)
    body = await _create(client, streamer)
    event = await _event(state, body)
    key = body["ingest"]["stream_key"]
    assert key not in event.stream_key_ciphertext
    assert key not in event.stream_key_hash
    assert keys.stream_key_of(state, event) == key


async def test_viewer_cannot_create_events(factory, client):
    tenant = await factory.tenant()
    viewer = await factory.user(tenant, role=Role.VIEWER)
    response = await client.post("/api/events", json={"title": "x"}, headers=viewer.headers)
    assert response.status_code == 403


async def test_full_lifecycle_with_reconnect(factory, client, state):
    streamer = await _streamer(factory)
    body = await _create(client, streamer)
    started = await client.post(f"/api/events/{body['id']}/start", headers=streamer.headers)
    assert started.json()["status"] == "ready"
    assert (await _publish(state, body)).status == "live"
    assert (await _unpublish(state, body)).status == "reconnecting"
    live_again = await _publish(state, body, publisher="client-2")
    assert live_again.status == "live"
    assert live_again.went_live_at is not None
    stopped = await client.post(f"/api/events/{body['id']}/stop", headers=streamer.headers)
    assert stopped.status_code == 200
    assert stopped.json()["status"] == "ended"
    assert stopped.json()["ended_reason"] == "stopped"
    assert stopped.json()["version"] == 6


@pytest.mark.parametrize(
    ("setup", "action", "code"),
    [
        ([], "stop", "event_not_started"),
        (["start"], "start", "event_already_started"),
        (["start", "publish"], "start", "event_already_live"),
        (["start", "publish"], "delete", "event_is_live"),
        (["start", "stop"], "start", "event_finished"),
        (["start", "stop"], "stop", "event_finished"),
        (["start", "stop"], "delete", "event_finished"),
        (["delete"], "start", "event_finished"),
        (["delete"], "delete", "event_finished"),
    ],
)
async def test_illegal_transitions_are_409_with_a_clear_code(
    factory, client, state, setup, action, code
):
    streamer = await _streamer(factory)
    body = await _create(client, streamer)
    url = f"/api/events/{body['id']}"

    async def do(step):
        if step == "publish":
            await _publish(state, body)
            return None
        if step == "delete":
            return await client.delete(url, headers=streamer.headers)
        return await client.post(f"{url}/{step}", headers=streamer.headers)

    for step in setup:
        response = await do(step)
        assert response is None or response.status_code == 200, response.text
    response = await do(action)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == code


async def test_second_publisher_is_refused_and_same_publisher_is_idempotent(factory, client, state):
    streamer = await _streamer(factory)
    body = await _create(client, streamer)
    await client.post(f"/api/events/{body['id']}/start", headers=streamer.headers)
    first = await _publish(state, body, "a")
    again = await _publish(state, body, "a")
    assert again.version == first.version
    with pytest.raises(lifecycle.PublisherAlreadyConnected):
        await _publish(state, body, "b")


async def test_late_done_of_an_old_publisher_does_not_drop_the_new_one(factory, client, state):
    streamer = await _streamer(factory)
    body = await _create(client, streamer)
    await client.post(f"/api/events/{body['id']}/start", headers=streamer.headers)
    await _publish(state, body, "a")
    await _unpublish(state, body, "a")
    await _publish(state, body, "b")
    assert await _unpublish(state, body, "a") is None
    assert (await _event(state, body)).status == "live"


async def test_concurrent_starts_move_the_event_once(factory, client):
    streamer = await _streamer(factory)
    body = await _create(client, streamer)
    url = f"/api/events/{body['id']}/start"
    responses = await asyncio.gather(
        *(client.post(url, headers=streamer.headers) for _ in range(6))
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409, 409, 409, 409, 409], [r.text for r in responses]
    final = await client.get(f"/api/events/{body['id']}", headers=streamer.headers)
    assert final.json()["version"] == 2


async def test_concurrent_stop_and_start_leave_a_consistent_state(factory, client):
    streamer = await _streamer(factory)
    body = await _create(client, streamer)
    url = f"/api/events/{body['id']}"
    await client.post(f"{url}/start", headers=streamer.headers)
    responses = await asyncio.gather(
        *(client.post(f"{url}/stop", headers=streamer.headers) for _ in range(4)),
        *(client.delete(url, headers=streamer.headers) for _ in range(2)),
    )
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) == 1, [r.text for r in responses]
    assert all(r.status_code == 409 for r in responses if r not in winners)
    final = (await client.get(url, headers=streamer.headers)).json()
    assert final["status"] == winners[0].json()["status"]
    assert final["version"] == 3


async def test_state_changes_are_published_after_commit(factory, client, state):
    streamer = await _streamer(factory)
    body = await _create(client, streamer)
    received: list[dict] = []
    got = asyncio.Event()

    async def handler(raw: bytes) -> None:
        received.append(json.loads(raw))
        got.set()

    unsubscribe = await state.pubsub.subscribe(lifecycle.state_channel(body["id"]), handler)
    try:
        await asyncio.sleep(0.05)
        await client.post(f"/api/events/{body['id']}/start", headers=streamer.headers)
        await asyncio.wait_for(got.wait(), 5)
    finally:
        await unsubscribe()
    assert received[0]["event_id"] == body["id"]
    assert received[0]["status"] == "ready"
    assert received[0]["previous"] == "scheduled"
    assert "at" in received[0]


async def test_a_failed_transition_publishes_nothing(factory, client, state):
    streamer = await _streamer(factory)
    body = await _create(client, streamer)
    received: list[bytes] = []

    async def handler(raw: bytes) -> None:
        received.append(raw)

    channel = lifecycle.state_channel(body["id"])
    unsubscribe = await state.pubsub.subscribe(channel, handler)
    try:
        response = await client.post(f"/api/events/{body['id']}/stop", headers=streamer.headers)
        assert response.status_code == 409
        # A channel delivers in order: once a marker published now has arrived, anything the
        # request published would have arrived before it.
        await state.pubsub.publish(channel, b"marker")
        await until(lambda: b"marker" in received, within=5)
    finally:
        await unsubscribe()
    assert received == [b"marker"]


# Only this test gets the short window: a module-level fixture would give it to every test
# here, and a slow machine would then end their events between an unpublish and a publish.
@pytest.mark.loops("reconnect_sweeper")
@pytest.mark.parametrize(
    "settings_overrides",
    [{"reconnect_window_seconds": 0.2, "reconnect_sweep_interval_seconds": 0.1}],
)
async def test_reconnect_window_expiry_ends_the_event(factory, client, state):
    streamer = await _streamer(factory)
    body = await _create(client, streamer)
    await client.post(f"/api/events/{body['id']}/start", headers=streamer.headers)
    await _publish(state, body)
    await _unpublish(state, body)
    for _ in range(50):
        current = await _event(state, body)
        if current.status == "ended":
            break
        await asyncio.sleep(0.1)
    assert current.status == "ended"
    assert current.ended_reason == "publisher_gone"


async def test_update_with_stale_version_is_refused(factory, client):
    streamer = await _streamer(factory)
    body = await _create(client, streamer)
    url = f"/api/events/{body['id']}"
    ok = await client.put(url, json={"title": "New", "version": 1}, headers=streamer.headers)
    assert ok.status_code == 200
    assert ok.json()["title"] == "New"
    assert ok.json()["version"] == 2
    stale = await client.put(url, json={"title": "Old", "version": 1}, headers=streamer.headers)
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "version_mismatch"


async def test_ended_event_cannot_be_edited(factory, client):
    streamer = await _streamer(factory)
    body = await _create(client, streamer)
    url = f"/api/events/{body['id']}"
    await client.post(f"{url}/start", headers=streamer.headers)
    await client.post(f"{url}/stop", headers=streamer.headers)
    response = await client.put(url, json={"title": "x"}, headers=streamer.headers)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "event_finished"


async def test_rotating_the_key_invalidates_the_old_one(factory, client, state):
    streamer = await _streamer(factory)
    body = await _create(client, streamer)
    old_key = body["ingest"]["stream_key"]
    response = await client.post(f"/api/events/{body['id']}/stream-key", headers=streamer.headers)
    assert response.status_code == 200
    new_key = response.json()["stream_key"]
    assert new_key != old_key
    event = await _event(state, body)
    assert keys.stream_key_of(state, event) == new_key
    assert event.stream_key_hash == keys.stream_key_hashes(state.settings, new_key)[0]


def test_a_stream_keys_lookup_hashes_are_its_hmac_under_each_data_key_newest_first():
    import hashlib

    from bigfootlive.config import Settings
    from bigfootlive.kit.crypto import keyed_hash

    for data in ("a" * 40, "b" * 40 + "," + "c" * 40):
        settings = Settings(encryption_keys=data)
        expected = [
            keyed_hash(hashlib.sha256(b"bfl-stream-key-lookup:" + k).digest(), "sk_x")
            for k in settings.data_keys
        ]
        assert keys.stream_key_hashes(settings, "sk_x") == expected
        assert keys.stream_key_hashes(settings, "sk_y") != expected  # nothing of sk_x kept
        assert len(expected) == len(data.split(","))
