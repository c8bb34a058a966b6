"""MediaMTX external HTTP authentication (`authHTTPAddress`), from its documented request body
`{ip, user, password, token, action, path, protocol, id, query, userAgent}`: 2xx allows, we
refuse with 401."""

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
    assert denied.status_code == 401
    token, _ = state.playback_tokens.issue(
        event_id=uuid.UUID(event["id"]), playback_id=event["playback_id"], viewer_id=None
    )
    allowed = await _call(studio, "read.json", playback_id=event["playback_id"], token=token)
    assert allowed.status_code == 200


async def test_api_and_metrics_access_is_refused(studio):
    response = await _call(studio, "api.json")
    assert response.status_code == 401


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


async def _live(studio, **fields):
    event = await studio.event(**fields)
    published = await _call(
        studio,
        "publish.json",
        client_id=str(uuid.uuid4()),
        playback_id=event["playback_id"],
        stream_key=event["ingest"]["stream_key"],
    )
    assert published.status_code == 200
    return event


def _token(state, event):
    token, _ = state.playback_tokens.issue(
        event_id=uuid.UUID(event["id"]), playback_id=event["playback_id"], viewer_id=None
    )
    return token


async def test_publish_with_the_key_as_password_goes_live(studio):
    event = await studio.event()
    values = {"client_id": str(uuid.uuid4()), "playback_id": event["playback_id"]}
    wrong = await _call(studio, "publish_password.json", stream_key="sk_wrong", **values)
    assert wrong.status_code == 401
    ok = await _call(
        studio, "publish_password.json", stream_key=event["ingest"]["stream_key"], **values
    )
    assert ok.status_code == 200
    assert await studio.status(event) == "live"


async def test_every_read_protocol_of_a_private_event_needs_its_token(studio, state):
    event = await _live(studio, visibility="private")
    other = await _live(studio, visibility="private")
    good, foreign = _token(state, event), _token(state, other)
    # HLS and WebRTC: the token is only in the query; RTSP: MediaMTX also extracts it into
    # `token`; SRT (or any protocol): the token as password
    for name in ("read.json", "read_webrtc.json", "read_rtsp.json", "read_password.json"):
        values = {"playback_id": event["playback_id"]}
        assert (await _call(studio, name, token="", **values)).status_code == 401, name
        assert (await _call(studio, name, token=foreign, **values)).status_code == 401, name
        assert (await _call(studio, name, token="garbage", **values)).status_code == 401, name
        assert (await _call(studio, name, token=good, **values)).status_code == 200, name


async def test_read_of_a_public_event_is_open_while_on_air_only(studio):
    event = await studio.event()
    values = {"playback_id": event["playback_id"], "token": ""}
    assert (await _call(studio, "read_webrtc.json", **values)).status_code == 401  # not live
    await _call(
        studio,
        "publish.json",
        client_id=str(uuid.uuid4()),
        playback_id=event["playback_id"],
        stream_key=event["ingest"]["stream_key"],
    )
    assert (await _call(studio, "read_webrtc.json", **values)).status_code == 200
    stopped = await studio.client.post(
        f"/api/events/{event['id']}/stop", headers=studio.streamer.headers
    )
    assert stopped.status_code == 200
    assert (await _call(studio, "read_webrtc.json", **values)).status_code == 401


async def test_playback_of_a_recording_needs_the_token_but_not_the_event_on_air(studio, state):
    event = await _live(studio, visibility="tenant")
    stopped = await studio.client.post(
        f"/api/events/{event['id']}/stop", headers=studio.streamer.headers
    )
    assert stopped.status_code == 200
    values = {"playback_id": event["playback_id"]}
    assert (
        await _call(studio, "read.json", token=_token(state, event), **values)
    ).status_code == 401
    assert (await _call(studio, "playback.json", token="", **values)).status_code == 401
    allowed = await _call(studio, "playback.json", token=_token(state, event), **values)
    assert allowed.status_code == 200
    public = await _live(studio)
    open_ = await _call(studio, "playback.json", token="", playback_id=public["playback_id"])
    assert open_.status_code == 200


async def test_unknown_path_is_refused(studio, state):
    response = await _call(studio, "read_webrtc.json", playback_id="pb_nobody", token="")
    assert response.status_code == 401


async def test_internal_pull_credential_reads_a_private_event(studio, state):
    event = await _live(studio, visibility="private")
    pull = state.playback_tokens.issue_internal_pull(event["playback_id"])
    values = {"playback_id": event["playback_id"]}
    assert (await _call(studio, "read_rtsp.json", token=pull, **values)).status_code == 200
    other = await _live(studio, visibility="private")
    foreign = state.playback_tokens.issue_internal_pull(other["playback_id"])
    assert (await _call(studio, "read_rtsp.json", token=foreign, **values)).status_code == 401
