"""Node Media Server's stream statistics (`GET /api/v1/streams/<app>/<name>`) in our terms;
against the real server: tests/e2e/test_node_media_server_live.py."""

from __future__ import annotations

import json

import jwt

from bigfootlive.streaming import nms_api
from tests.fixtures.recorded import payload


def _body(**values: object) -> dict[str, object]:
    return json.loads(payload("node_media_server", "stream_info.json", **values))  # type: ignore[no-any-return]


def test_a_publishing_stream_reads_as_our_stats():
    now = 1796180000 + 12.5
    stats = nms_api.parse_stream(_body(playback_id="pb1", session_id="s1"), now)
    assert stats is not None
    assert stats.publishing
    assert (stats.width, stats.height) == (640, 360)
    assert (stats.video_codec, stats.audio_codec) == ("H264", "AAC")
    assert stats.fps == 30
    assert stats.fps_source == "declared"
    assert stats.bitrate_kbps == 880000 * 8 / 1000  # NMS reports bytes per second
    assert stats.bytes_in == 1048576
    assert stats.uptime_seconds == 12.5
    assert stats.viewers == 1


def test_a_stream_in_nms_resume_grace_or_without_publisher_is_not_publishing():
    body = _body(playback_id="pb1", session_id="s1")
    body["data"]["status"] = "reconnecting"  # type: ignore[index]
    stats = nms_api.parse_stream(body, 1796180010.0)
    assert stats is not None
    assert not stats.publishing
    body["data"]["publisher"] = None  # type: ignore[index]
    assert nms_api.parse_stream(body, 1796180010.0) is None
    assert nms_api.parse_stream({"success": False, "data": {}}, 1796180010.0) is None


def test_the_api_token_is_short_lived_and_signed_with_the_secret():
    headers = nms_api.auth_headers("s" * 32, now=1796180000)
    claims = jwt.decode(
        headers["Authorization"].removeprefix("Bearer "),
        "s" * 32,
        algorithms=["HS256"],
        options={"verify_exp": False},
    )
    assert claims["exp"] - claims["iat"] == nms_api.TOKEN_SECONDS
