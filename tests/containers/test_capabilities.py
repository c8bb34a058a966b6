"""A requested capability that cannot run is refused with a clear error, and the stream
endpoint says where the ladder is when one runs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.containers.helpers import create_event, streamer


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # No worker is started here: these tests are about the API's answers.
    return {"container_manager_enabled": False, "cdn_base_url": "https://cdn.example.test"}


async def test_recording_without_ffmpeg_is_refused_with_422(factory, client, settings):
    settings.ffmpeg_path = "/nonexistent/ffmpeg"
    account = await streamer(factory)
    refused = await client.post(
        "/api/events", json={"title": "Show", "recording": True}, headers=account.headers
    )
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "recording_unavailable"
    assert "ffmpeg" in error["message"]

    event = await create_event(client, account)  # without recording: fine
    patched = await client.put(
        f"/api/events/{event['id']}", json={"recording": True}, headers=account.headers
    )
    assert patched.status_code == 422, patched.text
    assert patched.json()["error"]["code"] == "recording_unavailable"


async def test_the_stream_endpoint_names_the_ladder_when_one_runs(factory, client, settings):
    account = await streamer(factory)
    public = await create_event(client, account)
    body = (
        await client.get(f"/api/streaming/events/{public['id']}/stream", headers=account.headers)
    ).json()
    assert body["abr_master_url"] is None
    assert body["vod_urls"] == []
    assert body["token_rules"] is None

    settings.container_transcoder = True
    private = await create_event(client, account, visibility="private")
    body = (
        await client.get(f"/api/streaming/events/{private['id']}/stream", headers=account.headers)
    ).json()
    token = body["playback_token"]
    expected = f"https://cdn.example.test/live/{private['playback_id']}/master.m3u8?token={token}"
    assert body["abr_master_url"] == expected
    assert set(body["token_rules"]["applies_to"]) == {"hls_url", "abr_master_url", "vod_urls"}
