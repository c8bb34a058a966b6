"""Latency modes: ultra_low only where the media server can deliver it; the playback info
carries the player's live-sync settings for the event's mode."""

from __future__ import annotations

import pytest

from bigfootlive.authz.roles import Role
from bigfootlive.events.latency import segment_seconds
from bigfootlive.events.schemas import LatencyMode


@pytest.fixture
async def owner(factory):
    return await factory.user(await factory.tenant(), role=Role.STREAMER)


async def _create(client, owner, mode):
    return await client.post(
        "/api/events", json={"title": "Fast", "latency_mode": mode}, headers=owner.headers
    )


async def test_ultra_low_is_refused_on_nginx_rtmp(client, owner, settings):
    assert settings.media_server == "nginx-rtmp"
    refused = await _create(client, owner, "ultra_low")
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "latency_mode_unavailable"
    assert "MediaMTX or SRS" in error["message"]
    assert error["supported"] == ["normal", "low"]

    created = await _create(client, owner, "low")
    assert created.status_code == 201
    changed = await client.put(
        f"/api/events/{created.json()['id']}", json={"latency_mode": "ultra_low"},
        headers=owner.headers,
    )  # fmt: skip
    assert changed.status_code == 422
    assert changed.json()["error"]["code"] == "latency_mode_unavailable"


@pytest.mark.parametrize(
    ("server", "mode", "accepted"),
    [("mediamtx", "external", True), ("srs", "auto", True), ("mediamtx", "none", False),
     ("node-media-server", "external", False)],
)  # fmt: skip
async def test_ultra_low_where_the_server_delivers_it(
    client, owner, settings, server, mode, accepted
):
    settings.media_server = server
    settings.media_server_mode = mode
    answer = await _create(client, owner, "ultra_low")
    assert answer.status_code == (201 if accepted else 422), answer.text
    if accepted:
        assert answer.json()["latency_mode"] == "ultra_low"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("normal", {"lowLatencyMode": False, "liveSyncDurationCount": 3}),
        ("low", {"lowLatencyMode": True, "liveSyncDuration": 2.0}),
    ],
)
async def test_playback_info_carries_the_live_sync_settings(client, owner, mode, expected):
    created = await _create(client, owner, mode)
    assert created.status_code == 201, created.text
    stream = await client.get(
        f"/api/streaming/events/{created.json()['id']}/stream", headers=owner.headers
    )
    assert stream.status_code == 200, stream.text
    player = stream.json()["player"]
    assert player["latency_mode"] == mode
    assert player["hls_js"].items() >= expected.items()
    if mode == "low":
        assert player["target_latency_seconds"] <= 4
    else:
        assert "liveSyncDuration" not in player["hls_js"]  # hls.js refuses both styles at once


def test_the_ladder_cuts_shorter_segments_for_low_latency(settings):
    settings.transcoder_segment_seconds = 2.0
    assert segment_seconds(settings, LatencyMode.NORMAL) == 2.0
    assert segment_seconds(settings, LatencyMode.LOW) == 1.0
    assert segment_seconds(settings, LatencyMode.ULTRA_LOW) == 1.0
    settings.transcoder_segment_seconds = 0.5
    assert segment_seconds(settings, LatencyMode.LOW) == 0.5


@pytest.mark.parametrize(
    ("server", "mode", "path"),
    [("nginx-rtmp", "normal", "/hls/{pb}.m3u8"), ("nginx-rtmp", "low", "/live/{pb}/master.m3u8"),
     ("mediamtx", "low", "/live/{pb}/index.m3u8")],
)  # fmt: skip
async def test_a_low_latency_event_on_nginx_rtmp_plays_its_containers_playlist(
    client, owner, settings, server, mode, path
):
    """nginx-rtmp cuts every stream's HLS alike: a low event's container packages 1 s
    segments, and the playback info sends players there (other servers cut per stream)."""
    settings.media_server = server
    created = await _create(client, owner, mode)
    assert created.status_code == 201, created.text
    event = created.json()
    stream = await client.get(f"/api/streaming/events/{event['id']}/stream", headers=owner.headers)
    assert stream.status_code == 200, stream.text
    expected = settings.cdn_base_url.rstrip("/") + path.format(pb=event["playback_id"])
    assert stream.json()["hls_url"].split("?")[0] == expected
