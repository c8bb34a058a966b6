"""Node Media Server, through our wrapper (streaming/nms/bigfootlive-nms.js): it posts NMS's own
notify payload and closes the session unless the answer is 2xx. The real server end to end is
tests/e2e/test_node_media_server_live.py."""

from __future__ import annotations

import json
import uuid

from tests.fixtures.recorded import payload

HOOK = "/api/streaming/hooks/node-media-server"


async def _call(studio, name, **values):
    return await studio.client.post(
        HOOK,
        content=payload("node_media_server", name, **values),
        headers={**studio.hook_headers, "content-type": "application/json"},
    )


async def _publish(studio, event, client_id="nms1"):
    return await _call(
        studio,
        "prePublish.json",
        client_id=client_id,
        playback_id=event["playback_id"],
        stream_key=event["ingest"]["stream_key"],
    )


async def test_prepublish_with_the_key_makes_the_event_live(studio):
    event = await studio.event()
    response = await _publish(studio, event)
    assert response.status_code == 200
    assert await studio.status(event) == "live"


async def test_prepublish_with_a_wrong_key_or_another_events_key_is_refused(studio):
    event = await studio.event()
    other = await studio.event()
    wrong = await _call(
        studio, "prePublish.json", client_id="c", playback_id=event["playback_id"], stream_key="x"
    )
    assert wrong.status_code == 403
    crossed = await _call(
        studio,
        "prePublish.json",
        client_id="c",
        playback_id=event["playback_id"],
        stream_key=other["ingest"]["stream_key"],
    )
    assert crossed.status_code == 403
    assert await studio.status(event) == "ready"
    assert await studio.status(other) == "ready"


async def test_without_credentials_the_hook_is_refused(studio):
    response = await studio.client.post(
        HOOK,
        content=payload(
            "node_media_server", "prePlay.json", client_id="p", playback_id="x", query="{}"
        ),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 401


async def test_preplay_of_a_tenant_event_needs_its_playback_token(studio, state):
    event = await studio.event(visibility="tenant")
    assert (await _publish(studio, event)).status_code == 200
    values = {"client_id": "v1", "playback_id": event["playback_id"]}
    assert (await _call(studio, "prePlay.json", query="{}", **values)).status_code == 403
    token, _ = state.playback_tokens.issue(
        event_id=uuid.UUID(event["id"]), playback_id=event["playback_id"], viewer_id=None
    )
    # node's querystring makes a repeated name a list: the first value counts
    for query in ({"token": token}, {"token": [token, "junk"]}):
        allowed = await _call(studio, "prePlay.json", query=json.dumps(query), **values)
        assert allowed.status_code == 200


async def test_preplay_of_a_public_event_is_open_while_live_only(studio):
    event = await studio.event()
    values = {"client_id": "v1", "playback_id": event["playback_id"], "query": "{}"}
    assert (await _call(studio, "prePlay.json", **values)).status_code == 403  # not live yet
    assert (await _publish(studio, event)).status_code == 200
    assert (await _call(studio, "prePlay.json", **values)).status_code == 200


async def test_donepublish_of_the_publisher_moves_to_reconnecting_and_repeats_are_harmless(
    studio,
):
    event = await studio.event()
    assert (await _publish(studio, event, client_id="pub")).status_code == 200
    values = {"playback_id": event["playback_id"], "stream_key": event["ingest"]["stream_key"]}
    stale = await _call(studio, "donePublish.json", client_id="other", **values)
    assert stale.status_code == 200
    assert await studio.status(event) == "live"
    for _ in range(2):  # the wrapper at the close, NMS after its resume grace
        gone = await _call(studio, "donePublish.json", client_id="pub", **values)
        assert gone.status_code == 200
    assert await studio.status(event) == "reconnecting"


async def test_unknown_actions_and_malformed_bodies_are_400(studio):
    headers = {**studio.hook_headers, "content-type": "application/json"}
    for body in (
        {"action": "prePublishh", "id": "x"},
        {"action": "prePublish"},
        {"action": "prePlay", "id": "x", "name": "p", "query": 5},
    ):
        response = await studio.client.post(HOOK, json=body, headers=headers)
        assert response.status_code == 400, body
        assert response.json()["error"]["code"] == "bad_callback"


async def test_a_refused_publish_shows_the_encoders_address_to_the_streamer(studio):
    event = await studio.event(start=False)
    refused = await _publish(studio, event)
    assert refused.status_code == 403
    config = await studio.client.get(
        f"/api/streaming/events/{event['id']}/stream", headers=studio.streamer.headers
    )
    shown = config.json()["last_refused_publish"]
    assert shown["reason"] == "event_not_started"
    assert shown["source"] == "192.0.2.10"  # NMS's "::ffff:192.0.2.10:50312"
