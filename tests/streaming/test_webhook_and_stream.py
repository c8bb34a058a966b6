"""The generic per-event webhook and the playback configuration."""

from __future__ import annotations

import uuid


async def test_generic_webhook_publish_and_unpublish(studio):
    event = await studio.event()
    url = f"/api/streaming/events/{event['id']}/webhook"
    body = {"action": "publish", "client_id": "enc", "stream_key": event["ingest"]["stream_key"]}
    ok = await studio.client.post(url, json=body, headers=studio.hook_headers)
    assert ok.status_code == 200
    assert ok.json() == {"allowed": True, "reason": "ok"}
    gone = await studio.client.post(
        url, json={"action": "unpublish", "client_id": "enc"}, headers=studio.hook_headers
    )
    assert gone.json()["allowed"] is True
    assert await studio.status(event) == "reconnecting"


async def test_generic_webhook_refuses_a_key_of_another_event(studio):
    event = await studio.event()
    other = await studio.event()
    response = await studio.client.post(
        f"/api/streaming/events/{event['id']}/webhook",
        json={"action": "publish", "client_id": "e", "stream_key": other["ingest"]["stream_key"]},
        headers=studio.hook_headers,
    )
    assert response.status_code == 403
    assert response.json()["allowed"] is False
    assert await studio.status(other) == "ready"


async def test_generic_webhook_bad_input(studio):
    url = f"/api/streaming/events/{uuid.uuid4()}/webhook"
    bad_action = await studio.client.post(url, json={"action": "fly"}, headers=studio.hook_headers)
    assert bad_action.status_code == 422
    no_key = await studio.client.post(
        url, json={"action": "publish", "client_id": "x"}, headers=studio.hook_headers
    )
    assert no_key.status_code == 400
    unknown = await studio.client.post(
        url, json={"action": "unpublish", "client_id": "x"}, headers=studio.hook_headers
    )
    assert unknown.status_code == 403
    bad_id = await studio.client.post(
        "/api/streaming/events/nope/webhook", json={"action": "stop"}, headers=studio.hook_headers
    )
    assert bad_id.status_code == 422


async def test_viewer_gets_hls_by_playback_id_and_never_the_key(studio):
    event = await studio.event()
    response = await studio.client.get(
        f"/api/streaming/events/{event['id']}/stream", headers=studio.viewer.headers
    )
    assert response.status_code == 200
    body = response.json()
    assert body["ingest"] is None
    assert body["hls_url"] == f"https://cdn.bigfootlive.com/hls/{event['playback_id']}.m3u8"
    assert body["playback_token"] is None
    assert event["ingest"]["stream_key"] not in response.text


async def test_anonymous_viewer_of_a_public_event_gets_hls(studio):
    event = await studio.event()
    response = await studio.client.get(f"/api/streaming/events/{event['id']}/stream")
    assert response.status_code == 200
    assert event["ingest"]["stream_key"] not in response.text


async def test_private_event_gets_a_signed_playback_token_that_on_play_accepts(studio):
    event = await studio.event(visibility="private")
    config = (
        await studio.client.get(
            f"/api/streaming/events/{event['id']}/stream", headers=studio.streamer.headers
        )
    ).json()
    assert config["playback_token"]
    assert config["hls_url"].endswith(f"?token={config['playback_token']}")
    assert config["ingest"]["stream_key"] == event["ingest"]["stream_key"]
    await studio.client.post(
        f"/api/streaming/events/{event['id']}/webhook",
        json={"action": "publish", "client_id": "e", "stream_key": event["ingest"]["stream_key"]},
        headers=studio.hook_headers,
    )
    play = await studio.client.post(
        f"/api/streaming/events/{event['id']}/webhook",
        json={"action": "play", "client_id": "v", "playback_token": config["playback_token"]},
        headers=studio.hook_headers,
    )
    assert play.json()["allowed"] is True


async def test_tenant_event_stream_is_404_for_anonymous(studio):
    event = await studio.event(visibility="tenant")
    response = await studio.client.get(f"/api/streaming/events/{event['id']}/stream")
    assert response.status_code == 404


async def test_health_is_offline_without_a_publisher_and_hidden_from_viewers(studio):
    event = await studio.event()
    url = f"/api/streaming/events/{event['id']}/health"
    owner = await studio.client.get(url, headers=studio.streamer.headers)
    assert owner.status_code == 200
    assert owner.json()["verdict"] == "offline"
    viewer = await studio.client.get(url, headers=studio.viewer.headers)
    assert viewer.status_code == 403
    anonymous = await studio.client.get(url)
    assert anonymous.status_code == 401
