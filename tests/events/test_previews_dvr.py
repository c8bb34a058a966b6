"""Previews and DVR through the API: the event's `dvr_window_seconds` (default, validation,
update), `thumbnail_url` / `poster_url` in the event and its lists, the DVR playlist and
thumbnail in the playback info with the player's rewind settings, and the delivery
authorization of thumbnails, DVR playlists, posters and clips (the video's own rules).

The files themselves, made by a real container from a real stream:
tests/e2e/test_broadcast_previews_live.py.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from bigfootlive.authz.roles import Role
from bigfootlive.models import Event

AUTHORIZE = "/api/media/authorize"


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, Any]:
    return {"recordings_dir": str(tmp_path / "media")}


@pytest.fixture
async def world(factory, client) -> dict[str, Any]:
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    key = await client.post("/api/api-keys", json={"name": "media"}, headers=admin.headers)
    assert key.status_code == 201, key.text
    return {
        "owner": await factory.user(tenant, role=Role.STREAMER),
        "viewer": await factory.user(tenant, role=Role.VIEWER),
        "api_key": key.json()["key"],
    }


async def _create(client, owner, **fields) -> Any:
    return await client.post("/api/events", json={"title": "Show", **fields}, headers=owner.headers)


async def _go_live(client, world, event) -> None:
    started = await client.post(f"/api/events/{event['id']}/start", headers=world["owner"].headers)
    assert started.status_code == 200, started.text
    published = await client.post(
        "/api/streaming/hooks/nginx-rtmp",
        data={"call": "publish", "app": "ingest", "name": event["ingest"]["stream_key"],
              "clientid": "7", "addr": "127.0.0.1"},
        headers={"X-API-Key": world["api_key"]},
    )  # fmt: skip
    assert published.status_code == 302, published.text


async def test_dvr_window_defaults_to_30_minutes_and_is_validated(client, world, settings):
    owner = world["owner"]
    created = await _create(client, owner)
    assert created.status_code == 201, created.text
    assert created.json()["dvr_window_seconds"] == 1800
    assert created.json()["thumbnail_url"] is None
    assert created.json()["poster_url"] is None

    for bad in (-1, 86401, "long", 1.5):
        refused = await _create(client, owner, dvr_window_seconds=bad)
        assert refused.status_code == 422, (bad, refused.text)
        assert "error" in refused.json()

    settings.dvr_max_window_seconds = 600
    too_long = await _create(client, owner, dvr_window_seconds=601)
    assert too_long.status_code == 422
    assert too_long.json()["error"]["code"] == "dvr_window_too_long"
    assert too_long.json()["error"]["max_seconds"] == 600

    short = await _create(client, owner, dvr_window_seconds=0)
    assert short.status_code == 201
    assert short.json()["dvr_window_seconds"] == 0
    url = f"/api/events/{short.json()['id']}"
    changed = await client.put(url, json={"dvr_window_seconds": 300}, headers=owner.headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["dvr_window_seconds"] == 300
    refused = await client.put(url, json={"dvr_window_seconds": 900}, headers=owner.headers)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "dvr_window_too_long"
    viewer = await client.put(url, json={"dvr_window_seconds": 60}, headers=world["viewer"].headers)
    assert viewer.status_code == 403


async def test_live_event_has_a_thumbnail_and_a_dvr_playlist_under_its_token(
    client, world, settings
):
    owner = world["owner"]
    event = (await _create(client, owner, visibility="private", dvr_window_seconds=120)).json()
    stream = (await client.get(f"/api/streaming/events/{event['id']}/stream",
                               headers=owner.headers)).json()  # fmt: skip
    assert stream["thumbnail_url"] is None
    assert stream["dvr_url"] is None  # not on air yet
    await _go_live(client, world, event)

    cdn = settings.cdn_base_url.rstrip("/")
    thumb = f"{cdn}/live/{event['playback_id']}/thumbnail.jpg"
    got = await client.get(f"/api/events/{event['id']}", headers=owner.headers)
    assert got.json()["status"] == "live"
    assert got.json()["thumbnail_url"] == thumb
    listed = await client.get("/api/events", headers=owner.headers)
    assert [e["thumbnail_url"] for e in listed.json()["items"] if e["id"] == event["id"]] == [thumb]

    stream = (await client.get(f"/api/streaming/events/{event['id']}/stream",
                               headers=owner.headers)).json()  # fmt: skip
    token = stream["playback_token"]
    assert stream["thumbnail_url"] == f"{thumb}?token={token}"
    assert stream["dvr_url"] == f"{cdn}/live/{event['playback_id']}/dvr/index.m3u8?token={token}"
    assert {"dvr_url", "thumbnail_url"} <= set(stream["token_rules"]["applies_to"])
    player = stream["player"]
    assert player["dvr_window_seconds"] == 120
    # a rewound player is not pulled back to the live edge
    assert not any("MaxLatency" in option for option in player["hls_js"])

    # no window: no DVR playlist, the live edge's usual settings
    flat = (await _create(client, owner, dvr_window_seconds=0)).json()
    await _go_live(client, world, flat)
    stream = (await client.get(f"/api/streaming/events/{flat['id']}/stream",
                               headers=owner.headers)).json()  # fmt: skip
    assert stream["dvr_url"] is None
    assert stream["thumbnail_url"].endswith(f"/live/{flat['playback_id']}/thumbnail.jpg")
    assert stream["player"]["dvr_window_seconds"] == 0
    assert stream["player"]["hls_js"]["liveMaxLatencyDurationCount"] == 10


async def test_poster_of_the_recording_is_in_the_event(client, world, state):
    owner = world["owner"]
    event = (await _create(client, owner)).json()
    poster = f"http://cdn.test/vod/{event['id']}/poster.jpg"
    async with state.db.transaction() as session:
        stmt = update(Event).where(Event.id == uuid.UUID(event["id"])).values(poster_url=poster)
        await session.execute(stmt)
    got = await client.get(f"/api/events/{event['id']}")
    assert got.json()["poster_url"] == poster


async def _ask(client, world, uri: str, token: str | None = None) -> Any:
    headers = {"X-API-Key": world["api_key"], "X-Original-URI": uri}
    if token:
        headers["X-Playback-Token"] = token
    return await client.get(AUTHORIZE, headers=headers)


@pytest.mark.parametrize("visibility", ["private", "tenant"])
async def test_previews_posters_and_clips_are_delivered_like_the_video(client, world, visibility):
    owner = world["owner"]
    event = (await _create(client, owner, visibility=visibility)).json()
    other = (await _create(client, owner, visibility=visibility)).json()
    public = (await _create(client, owner)).json()

    async def token_of(e: dict[str, Any]) -> str:
        answer = await client.get(f"/api/streaming/events/{e['id']}/stream", headers=owner.headers)
        return str(answer.json()["playback_token"])

    clip = "0b6c3c3e-8d1e-4c55-9a57-5e2f2b1f0a11"

    def paths(e: dict[str, Any]) -> list[str]:
        pb, eid = e["playback_id"], e["id"]
        return [f"/live/{pb}/thumbnail.jpg", f"/live/{pb}/dvr/index.m3u8",
                f"/live/{pb}/dvr/seg_000042.ts", f"/vod/{eid}/poster.jpg",
                f"/vod/{eid}/clips/{clip}/index.m3u8", f"/vod/{eid}/clips/{clip}/poster.jpg",
                f"/vod/{eid}/clips/{clip}/seg_00000.ts"]  # fmt: skip

    token, wrong = await token_of(event), await token_of(other)
    for uri in paths(event):
        anonymous = await _ask(client, world, uri)
        assert anonymous.status_code == 401, uri
        assert anonymous.json()["error"]["code"] == "playback_token_required"
        assert (await _ask(client, world, uri, wrong)).status_code == 403, uri
        assert (await _ask(client, world, uri, token)).status_code == 200, uri
    for uri in paths(public):
        assert (await _ask(client, world, uri)).status_code == 200, uri
