"""MediaMTX external HTTP authentication, from its documented request body; 2xx allows."""

from __future__ import annotations

import uuid

from tests.fixtures.recorded import payload

HOOK = "/api/streaming/hooks/mediamtx"


async def _call(studio, name, **values):
    return await studio.client.post(
        HOOK,
        content=payload("mediamtx", name, **values),
        headers={**studio.hook_headers, "content-type": "application/json"},
    )


async def test_publish_with_key_in_query_makes_the_event_live(studio):
    event = await studio.event()
    response = await _call(
        studio,
        "publish.json",
        client_id=str(uuid.uuid4()),
        playback_id=event["playback_id"],
        stream_key=event["ingest"]["stream_key"],
    )
    assert response.status_code == 200
    assert await studio.status(event) == "live"


async def test_publish_with_a_wrong_key_is_denied(studio):
    event = await studio.event()
    response = await _call(
        studio,
        "publish.json",
        client_id="c",
        playback_id=event["playback_id"],
        stream_key="sk_wrong",
    )
    assert response.status_code in (401, 403)
    assert await studio.status(event) == "ready"


async def test_read_of_a_tenant_event_needs_a_playback_token(studio, state):
    event = await studio.event(visibility="tenant")
    await _call(
        studio,
        "publish.json",
        client_id="pub",
        playback_id=event["playback_id"],
        stream_key=event["ingest"]["stream_key"],
    )
    denied = await _call(studio, "read.json", playback_id=event["playback_id"], token="")
    assert denied.status_code == 403
    token, _ = state.playback_tokens.issue(
        event_id=uuid.UUID(event["id"]), playback_id=event["playback_id"], viewer_id=None
    )
    allowed = await _call(studio, "read.json", playback_id=event["playback_id"], token=token)
    assert allowed.status_code == 200


async def test_api_and_metrics_access_is_refused(studio):
    response = await _call(studio, "api.json")
    assert response.status_code == 403


async def test_body_that_is_not_an_object_is_400(studio):
    response = await studio.client.post(
        HOOK, content=b"[1, 2]", headers={**studio.hook_headers, "content-type": "application/json"}
    )
    assert response.status_code == 400
    garbage = await studio.client.post(
        HOOK, content=b"{oops", headers={**studio.hook_headers, "content-type": "application/json"}
    )
    assert garbage.status_code == 400


async def test_run_on_not_ready_unpublish_of_the_publisher_moves_to_reconnecting(studio):
    event = await studio.event()
    values = {"playback_id": event["playback_id"], "stream_key": event["ingest"]["stream_key"]}
    conn = str(uuid.uuid4())
    assert (await _call(studio, "publish.json", client_id=conn, **values)).status_code == 200
    # a late report of an older connection changes nothing
    stale = await _call(
        studio, "unpublish.json", client_id=str(uuid.uuid4()), playback_id=event["playback_id"]
    )
    assert stale.status_code == 200
    assert await studio.status(event) == "live"
    gone = await _call(studio, "unpublish.json", client_id=conn, playback_id=event["playback_id"])
    assert gone.status_code == 200
    assert await studio.status(event) == "reconnecting"
