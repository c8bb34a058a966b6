"""Stopping an event drops its publisher at Node Media Server through its REST API v1
(`DELETE /api/v1/sessions/{id}`), authenticated by a JWT we sign with NMS_API_SECRET. NMS is a
small HTTP server here answering its documented payloads; the real NMS is
tests/e2e/test_node_media_server_live.py."""

from __future__ import annotations

import jwt
import pytest

from tests.fixtures.control_api import ControlApi
from tests.fixtures.recorded import payload

SECRET = "nms-api-secret-for-tests-0123456789"
BASE = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "rtmp_port": 19999}


@pytest.fixture
def control_api():
    with ControlApi().running() as api:
        yield api


@pytest.fixture
def settings_overrides(control_api):
    return {
        **BASE,
        "media_server": "node-media-server",
        "nms_api_url": control_api.url,
        "nms_api_secret": SECRET,
    }


async def _live(studio, session_id):
    event = await studio.event()
    key = str(event["ingest"]["stream_key"]).rsplit("?key=", 1)[-1]
    published = await studio.client.post(
        "/api/streaming/hooks/node-media-server",
        content=payload(
            "node_media_server",
            "prePublish.json",
            client_id=session_id,
            playback_id=event["playback_id"],
            stream_key=key,
        ),
        headers={**studio.hook_headers, "content-type": "application/json"},
    )
    assert published.status_code == 200, published.text
    return event


async def _stop(studio, event) -> None:
    stopped = await studio.client.post(
        f"/api/events/{event['id']}/stop", headers=studio.streamer.headers
    )
    assert stopped.status_code == 200, stopped.text


def _claims(headers: dict[str, str]) -> dict[str, object]:
    scheme, _, token = headers["authorization"].partition(" ")
    assert scheme == "Bearer"
    return jwt.decode(token, SECRET, algorithms=["HS256"])


async def test_stop_deletes_the_publishers_session_with_a_short_signed_token(studio, control_api):
    event = await _live(studio, "mx5q1l9c55cqs0pp")
    control_api.answer(
        "DELETE",
        "/api/v1/sessions/mx5q1l9c55cqs0pp",
        200,
        payload("node_media_server", "session_deleted.json", session_id="mx5q1l9c55cqs0pp"),
    )
    await _stop(studio, event)
    assert control_api.calls == [("DELETE", "/api/v1/sessions/mx5q1l9c55cqs0pp", "")]
    claims = _claims(control_api.headers[0])
    assert int(claims["exp"]) - int(claims["iat"]) <= 60  # type: ignore[call-overload]
    assert SECRET not in str(control_api.headers[0])


async def test_a_gone_session_falls_back_to_the_streams_current_publisher(studio, control_api):
    event = await _live(studio, "oldsession000001")
    pb = event["playback_id"]
    control_api.answer(
        "DELETE",
        "/api/v1/sessions/oldsession000001",
        404,
        payload("node_media_server", "session_not_found.json"),
    )
    control_api.answer(
        "GET",
        f"/api/v1/streams/live/{pb}",
        200,
        payload("node_media_server", "stream_info.json", playback_id=pb, session_id="newone"),
    )
    control_api.answer(
        "DELETE",
        "/api/v1/sessions/newone",
        200,
        payload("node_media_server", "session_deleted.json", session_id="newone"),
    )
    await _stop(studio, event)
    assert control_api.paths() == [
        "/api/v1/sessions/oldsession000001",
        f"/api/v1/streams/live/{pb}",
        "/api/v1/sessions/newone",
    ]
    assert all(_claims(h) for h in control_api.headers)


async def test_nobody_publishing_any_more_is_left_alone(studio, control_api):
    event = await _live(studio, "gone")
    pb = event["playback_id"]
    control_api.answer(
        "DELETE",
        "/api/v1/sessions/gone",
        404,
        payload("node_media_server", "session_not_found.json"),
    )
    control_api.answer(
        "GET",
        f"/api/v1/streams/live/{pb}",
        404,
        payload("node_media_server", "stream_not_found.json"),
    )
    await _stop(studio, event)
    assert control_api.paths("DELETE") == ["/api/v1/sessions/gone"]


async def test_a_refused_token_does_not_fail_the_stop(studio, control_api):
    event = await _live(studio, "s1")
    control_api.answer(
        "DELETE", "/api/v1/sessions/s1", 401, payload("node_media_server", "unauthorized.json")
    )
    await _stop(studio, event)
    assert await studio.status(event) == "ended"
    assert control_api.paths() == ["/api/v1/sessions/s1"]
