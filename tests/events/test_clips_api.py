"""Clips through the API: who may cut them (owner, moderators, admins), the ranges refused with
4xx (reversed, too long, outside the DVR window or the recording, no source), list / get /
delete for whoever may watch the event, and other tenants getting 404. The cut itself runs the
job's code on a DVR playlist and a recording written by a real ffmpeg: the clip is its own VOD
with a poster and the duration asked for.

With a real stream, nginx-rtmp and the job queue: tests/e2e/test_broadcast_previews_live.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bigfootlive.authz.roles import Role
from bigfootlive.containers import cutting
from bigfootlive.containers.cutting import parse_playlist
from bigfootlive.containers.storage import hls_dir_for
from bigfootlive.db import utcnow
from bigfootlive.models import Clip, Recording
from tests.fixtures.jobs import settled


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, Any]:
    return {"recordings_dir": str(tmp_path / "media")}


@pytest.fixture
async def world(factory, client) -> dict[str, Any]:
    tenant = await factory.tenant()
    other = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    key = await client.post("/api/api-keys", json={"name": "media"}, headers=admin.headers)
    assert key.status_code == 201, key.text
    owner = await factory.user(tenant, role=Role.STREAMER)
    created = await client.post(
        "/api/events", json={"title": "Show", "visibility": "tenant", "dvr_window_seconds": 600},
        headers=owner.headers,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    return {
        "owner": owner,
        "admin": admin,
        "moderator": await factory.user(tenant, role=Role.MODERATOR),
        "viewer": await factory.user(tenant, role=Role.VIEWER),
        "outsider": await factory.user(other, role=Role.ADMIN),
        "api_key": key.json()["key"],
        "event": created.json(),
    }


async def _go_live(client, world) -> None:
    event = world["event"]
    started = await client.post(f"/api/events/{event['id']}/start", headers=world["owner"].headers)
    assert started.status_code == 200, started.text
    published = await client.post(
        "/api/streaming/hooks/nginx-rtmp",
        data={"call": "publish", "app": "ingest", "name": event["ingest"]["stream_key"],
              "clientid": "7", "addr": "127.0.0.1"},
        headers={"X-API-Key": world["api_key"]},
    )  # fmt: skip
    assert published.status_code == 302, published.text


def _dvr(seconds_ago: float, length: float) -> dict[str, str]:
    now = utcnow()
    start = now - dt.timedelta(seconds=seconds_ago)
    return {
        "start_at": start.isoformat(),
        "end_at": (start + dt.timedelta(seconds=length)).isoformat(),
    }


def _url(world: dict[str, Any]) -> str:
    return f"/api/events/{world['event']['id']}/clips"


async def test_dvr_clip_ranges_are_checked(client, world, settings):
    owner = world["owner"]
    not_live = await client.post(_url(world), json=_dvr(30, 10), headers=owner.headers)
    assert not_live.status_code == 409
    assert not_live.json()["error"]["code"] == "event_not_on_air"
    await _go_live(client, world)

    settings.clip_max_seconds = 60
    cases = [
        ({"start_at": _dvr(30, 10)["start_at"]}, 422, "invalid_clip_range"),  # no end
        (_dvr(30, -5), 422, "invalid_clip_range"),  # ends before it starts
        (_dvr(30, 0), 422, "invalid_clip_range"),
        (_dvr(100, 61), 422, "invalid_clip_range"),  # longer than CLIP_MAX_SECONDS
        (_dvr(700, 10), 422, "clip_out_of_range"),  # before the 600 s window
        (_dvr(-60, 10), 422, "clip_out_of_range"),  # in the future
        ({**_dvr(30, 10), "start_seconds": 1}, 422, "invalid_clip_range"),
        ({"start_at": "yesterday", "end_at": "today"}, 422, None),
        ({"start_at": "2026-12-02T10:00:00", "end_at": "2026-12-02T10:00:10"}, 422, None),
        ({**_dvr(30, 10), "source": "tape"}, 422, None),
        ({**_dvr(30, 10), "extra": 1}, 422, None),
        ({"source": "recording", "start_seconds": 0, "end_seconds": 5}, 409, "no_recording"),
    ]
    for body, status, code in cases:
        answer = await client.post(_url(world), json=body, headers=owner.headers)
        assert answer.status_code == status, (body, answer.text)
        error = answer.json()["error"]
        if code:
            assert error["code"] == code, (body, error)
    bad = await client.post(
        _url(world), content=b"{not json",
        headers={**owner.headers, "content-type": "application/json"},
    )  # fmt: skip
    assert bad.status_code == 400

    created = await client.post(
        _url(world), json={**_dvr(40, 10), "title": "Goal"}, headers=owner.headers
    )
    assert created.status_code == 201, created.text
    clip = created.json()
    assert clip["status"] == "pending"
    assert clip["source"] == "dvr"
    assert clip["title"] == "Goal"
    assert clip["playback_url"] is None


async def test_who_may_cut_list_and_delete_clips(client, world):
    await _go_live(client, world)
    made = {}
    for who in ("owner", "moderator", "admin"):
        answer = await client.post(_url(world), json=_dvr(20, 5), headers=world[who].headers)
        assert answer.status_code == 201, (who, answer.text)
        made[who] = answer.json()["id"]
    viewer = await client.post(_url(world), json=_dvr(20, 5), headers=world["viewer"].headers)
    assert viewer.status_code == 403
    assert viewer.json()["error"]["code"] == "not_event_manager"
    outsider = await client.post(_url(world), json=_dvr(20, 5), headers=world["outsider"].headers)
    assert outsider.status_code == 404
    anonymous = await client.post(_url(world), json=_dvr(20, 5))
    assert anonymous.status_code == 401

    # members may watch a tenant event, so they see its clips; other tenants do not
    listed = await client.get(_url(world), headers=world["viewer"].headers)
    assert listed.status_code == 200
    assert {c["id"] for c in listed.json()} == set(made.values())
    one = await client.get(f"{_url(world)}/{made['owner']}", headers=world["viewer"].headers)
    assert one.status_code == 200
    assert one.json()["id"] == made["owner"]
    for headers in (world["outsider"].headers, {}):
        assert (await client.get(_url(world), headers=headers)).status_code == 404
        theirs = await client.get(f"{_url(world)}/{made['owner']}", headers=headers)
        assert theirs.status_code == 404
    missing = await client.get(f"{_url(world)}/{uuid.uuid4()}", headers=world["owner"].headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "clip_not_found"

    # a clip is reached only through its own event
    other_event = await client.post(
        "/api/events", json={"title": "B"}, headers=world["owner"].headers
    )
    elsewhere = f"/api/events/{other_event.json()['id']}/clips/{made['owner']}"
    assert (await client.get(elsewhere, headers=world["owner"].headers)).status_code == 404

    target = f"{_url(world)}/{made['moderator']}"
    assert (await client.delete(target, headers=world["viewer"].headers)).status_code == 403
    assert (await client.delete(target, headers=world["outsider"].headers)).status_code == 404
    assert (await client.delete(target, headers=world["owner"].headers)).status_code == 204
    assert (await client.get(target, headers=world["owner"].headers)).status_code == 404
    assert (await client.delete(target, headers=world["owner"].headers)).status_code == 404


async def _ffmpeg_hls(out: Path, seconds: int, *, pdt: bool) -> None:
    """What the container's DVR copy or recorder would have written: 2 s segments."""
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    flags = "independent_segments" + ("+program_date_time" if pdt else "")
    process = await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-f", "lavfi", "-i", "testsrc=size=160x90:rate=15",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-f", "hls", "-hls_time", "2", "-hls_list_size", "0",
        "-hls_flags", flags, "-hls_segment_filename", str(out / "seg_%06d.ts"),
        str(out / "index.m3u8"),
    )  # fmt: skip
    assert await process.wait() == 0


async def _probe_duration(path: Path) -> float:
    probe = await asyncio.create_subprocess_exec(
        "ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
        str(path), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await probe.communicate()
    return float(out.decode().strip())


async def test_the_cut_job_makes_a_vod_with_a_poster(client, world, state, settings):
    await _go_live(client, world)
    event = world["event"]
    event_id = uuid.UUID(event["id"])
    dvr = hls_dir_for(settings, event_id, event["playback_id"]) / "dvr"
    await _ffmpeg_hls(dvr, 16, pdt=True)
    first = parse_playlist(dvr / "index.m3u8")[0].at
    assert first is not None
    async with state.db.transaction() as session:
        clip = Clip(
            tenant_id=uuid.UUID(event["tenant_id"]), event_id=event_id, title="", source="dvr",
            start_at=first + dt.timedelta(seconds=5), end_at=first + dt.timedelta(seconds=11),
            status="pending", duration_seconds=0.0,
        )  # fmt: skip
        session.add(clip)
        late = Clip(
            tenant_id=clip.tenant_id, event_id=event_id, title="", source="dvr",
            start_at=first - dt.timedelta(seconds=60), end_at=first - dt.timedelta(seconds=55),
            status="pending", duration_seconds=0.0,
        )  # fmt: skip
        session.add(late)
    await cutting.cut_clip(state, clip.id)
    await cutting.cut_clip(state, late.id)
    got = await client.get(f"{_url(world)}/{clip.id}", headers=world["owner"].headers)
    body = got.json()
    assert body["status"] == "ready", body
    prefix = f"vod/{event_id}/clips/{clip.id}"
    assert body["playback_url"].endswith(f"/{prefix}/index.m3u8")
    assert body["poster_url"].endswith(f"/{prefix}/poster.jpg")
    served = Path(settings.recordings_dir) / prefix
    assert (served / "poster.jpg").read_bytes()[:2] == b"\xff\xd8"  # a JPEG
    # stream copy starts at the keyframe at or before start (1 s GOP here)
    assert 6.0 <= await _probe_duration(served / "index.m3u8") <= 7.2
    assert 6.0 <= body["duration_seconds"] <= 7.2
    failed = (await client.get(f"{_url(world)}/{late.id}", headers=world["owner"].headers)).json()
    assert failed["status"] == "failed"
    assert "no longer" in failed["failure_reason"]

    # the files go with the clip
    deleted = await client.delete(f"{_url(world)}/{clip.id}", headers=world["owner"].headers)
    assert deleted.status_code == 204
    assert not served.exists()


async def test_a_clip_from_the_recording(client, world, state, settings):
    event = world["event"]
    event_id = uuid.UUID(event["id"])
    vod = Path(settings.recordings_dir) / "vod" / event["id"] / "source"
    await _ffmpeg_hls(vod, 12, pdt=False)
    async with state.db.transaction() as session:
        session.add(Recording(
            tenant_id=uuid.UUID(event["tenant_id"]), event_id=event_id, status="ready",
            storage="local", location=f"vod/{event_id}/master.m3u8",
            playback_url=f"http://cdn.test/vod/{event_id}/master.m3u8", duration_seconds=12.0,
            renditions=["source"],
        ))  # fmt: skip
    owner = world["owner"]
    past_end = {"source": "recording", "start_seconds": 8, "end_seconds": 13}
    refused = await client.post(_url(world), json=past_end, headers=owner.headers)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "clip_out_of_range"
    dvr_fields = {"source": "recording", **_dvr(10, 5)}
    assert (
        await client.post(_url(world), json=dvr_fields, headers=owner.headers)
    ).status_code == 422

    created = await client.post(
        _url(world), json={"source": "recording", "start_seconds": 2, "end_seconds": 7},
        headers=owner.headers,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    await settled(state.jobs, within=60)  # the job queue's worker, where this process has one
    if state.jobs.worker is None:
        await cutting.cut_clip(state, uuid.UUID(created.json()["id"]))
    async with state.db.transaction() as session:
        row = (await session.execute(select(Clip))).scalar_one()
    assert row.status == "ready", row.failure_reason
    assert 5.0 <= row.duration_seconds <= 6.2
    assert row.poster_url is not None
