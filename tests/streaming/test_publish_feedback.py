"""A refused publish is shown to the streamer: the event's last refusal (reason, time, source
address) in the stream endpoint for its managers, and a `system` message of kind
`publish_refused` on the owner's real-time sockets."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.fixtures.recorded import payload
from tests.realtime.conftest import REALTIME_SETTINGS, join, live_server  # noqa: F401


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {**REALTIME_SETTINGS, "argon2_time_cost": 1, "argon2_memory_kib": 1024}


async def _stream(studio, event, account) -> dict[str, Any]:
    response = await studio.client.get(
        f"/api/streaming/events/{event['id']}/stream", headers=account.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def _hook(studio, vendor: str, name: str, content_type: str, **values: Any):
    path = {"srs": "srs", "mediamtx": "mediamtx", "nginx_rtmp": "nginx-rtmp"}[vendor]
    return await studio.client.post(
        f"/api/streaming/hooks/{path}",
        content=payload(vendor, name, **values),
        headers={**studio.hook_headers, "content-type": content_type},
    )


async def test_srs_publish_before_start_is_shown_to_the_streamer_only(studio, live_server):  # noqa: F811
    event = await studio.event(start=False)
    owner = await join(live_server.url(event["id"]), studio.streamer)
    viewer = await join(live_server.url(event["id"]), studio.viewer)
    assert (await _stream(studio, event, studio.streamer))["last_refused_publish"] is None

    before = dt.datetime.now(dt.UTC)
    refused = await _hook(
        studio,
        "srs",
        "on_publish.json",
        "application/json",
        client_id="c1",
        playback_id=event["playback_id"],
        stream_key=event["ingest"]["stream_key"],
    )
    assert refused.status_code == 403

    shown = (await _stream(studio, event, studio.streamer))["last_refused_publish"]
    assert shown["reason"] == "event_not_started"
    assert shown["source"] == "127.0.0.1"  # the `ip` SRS reported
    assert before <= dt.datetime.fromisoformat(shown["at"]) <= dt.datetime.now(dt.UTC)
    assert (await _stream(studio, event, studio.viewer))["last_refused_publish"] is None

    pushed = await owner.next("system", kind="publish_refused")
    assert pushed["event_id"] == event["id"]
    assert pushed["reason"] == "event_not_started"
    assert pushed["source"] == "127.0.0.1"
    assert "not been started" in pushed["text"]
    # the viewer's socket on the same event hears nothing of it
    await viewer.send(type="ping", ref="p")
    await viewer.next("pong")
    assert not [m for m in viewer.seen if m.get("kind") == "publish_refused"]


async def test_mediamtx_wrong_key_on_the_events_path_is_recorded(studio):
    event = await studio.event()
    refused = await _hook(
        studio,
        "mediamtx",
        "publish.json",
        "application/json",
        client_id="c1",
        playback_id=event["playback_id"],
        stream_key="sk_not_this_one",
    )
    assert refused.status_code == 401  # MediaMTX: any non-2xx refuses; 401 is its convention
    shown = (await _stream(studio, event, studio.streamer))["last_refused_publish"]
    assert shown["reason"] == "unknown_stream"
    assert shown["source"] == "127.0.0.1"


async def test_nginx_rtmp_second_publisher_is_recorded_and_the_last_refusal_wins(studio):
    event = await studio.event()
    key = event["ingest"]["stream_key"]
    first = await _hook(
        studio,
        "nginx_rtmp",
        "publish.form",
        "application/x-www-form-urlencoded",
        client_id="1",
        stream_key=key,
    )
    assert first.status_code == 302
    second = await _hook(
        studio,
        "nginx_rtmp",
        "publish.form",
        "application/x-www-form-urlencoded",
        client_id="2",
        stream_key=key,
    )
    assert second.status_code == 403
    shown = (await _stream(studio, event, studio.streamer))["last_refused_publish"]
    assert shown["reason"] == "publisher_already_connected"


async def test_a_refusal_for_another_tenants_event_is_not_recorded(studio, factory, client):
    from bigfootlive.authz.roles import Role

    other_tenant = await factory.tenant()
    other_admin = await factory.user(other_tenant, role=Role.ADMIN)
    created = await client.post(
        "/api/api-keys", json={"name": "other"}, headers=other_admin.headers
    )
    other_key = created.json()["key"]
    event = await studio.event(start=False)
    refused = await client.post(
        "/api/streaming/hooks/srs",
        content=payload(
            "srs",
            "on_publish.json",
            client_id="c1",
            playback_id=event["playback_id"],
            stream_key="sk_guess",
        ),
        headers={"X-API-Key": other_key, "content-type": "application/json"},
    )
    assert refused.status_code == 403
    assert (await _stream(studio, event, studio.streamer))["last_refused_publish"] is None
