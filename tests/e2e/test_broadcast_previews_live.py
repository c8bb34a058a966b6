"""Previews, DVR and clips end to end: a real `bigfootlive serve` (SQLite, in-process jobs and
event containers) with its managed nginx-rtmp, and an ffmpeg encoder.

A private, recorded event with a 60 s DVR window goes live. Its container copies the ingest
into the DVR playlist and grabs thumbnails: the thumbnail is served by nginx under the video's
authorization (the owner's playback token: 200, a JPEG; anonymous: 401). The DVR playlist
keeps more than nginx-rtmp's own live playlist, and a player started at its oldest segment
(ffmpeg / ffprobe `-live_start_index 0`) plays from well before the live edge. A clip cut from
the DVR window by wall-clock time becomes its own VOD with a poster and the asked-for duration
(ffprobe). When the event ends its recording is published with a poster (in the recording and
the event), and a clip cut from the recording plays with its duration too. Anonymous viewers
get 401 for every preview, poster and clip.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_managed_media_server import (
    Managed,
    _publish,
    _until_async,
    managed_server,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

_EXTINF = re.compile(r"^#EXTINF:([0-9.]+)", re.MULTILINE)
_PDT = re.compile(r"^#EXT-X-PROGRAM-DATE-TIME:(\S+)", re.MULTILINE)


@pytest.fixture
async def managed(tmp_path: Path) -> AsyncIterator[Managed]:
    async with managed_server(
        tmp_path, CONTAINER_HEARTBEAT_INTERVAL_SECONDS="1", PREVIEW_INTERVAL_SECONDS="1"
    ) as m:
        yield m


async def _run(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(errors="replace")


async def _first_pts(url: str, *live_start: str) -> float:
    """The timestamp of the first video packet a player starting there decodes."""
    code, out = await _run(
        "ffprobe", "-v", "error", *live_start, "-select_streams", "v:0",
        "-read_intervals", "%+#1", "-show_entries", "packet=pts_time", "-of", "csv=p=0", url,
    )  # fmt: skip
    assert code == 0, out
    return float(out.split()[0].strip(","))


async def _duration(url: str) -> float:
    code, out = await _run(
        "ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", url
    )
    assert code == 0, out
    return float(out.strip())


async def _jpeg(m: Managed, url: str) -> None:
    """Served to the token's holder; refused to an anonymous viewer (no token, no cookie)."""
    got = await m.cdn.get(url)
    assert got.status_code == 200, (url, got.text)
    assert got.content[:2] == b"\xff\xd8"
    await _refused(url)


async def _refused(url: str) -> None:
    async with httpx.AsyncClient(timeout=10) as anonymous:
        answer = await anonymous.get(url.split("?", 1)[0])
    assert answer.status_code == 401, (url, answer.status_code)


async def _stream(m: Managed, event_id: str) -> dict[str, Any]:
    answer = await m.api.get(f"/api/streaming/events/{event_id}/stream", headers=m.headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def _clip(m: Managed, event_id: str, body: dict[str, Any]) -> dict[str, Any]:
    created = await m.api.post(f"/api/events/{event_id}/clips", json=body, headers=m.headers)
    assert created.status_code == 201, created.text
    url = f"/api/events/{event_id}/clips/{created.json()['id']}"
    clip: dict[str, Any] = {}

    async def cut() -> bool:
        nonlocal clip
        clip = (await m.api.get(url, headers=m.headers)).json()
        return clip["status"] != "pending"

    await _until_async(cut, 60, lambda: str(clip))
    assert clip["status"] == "ready", clip
    return clip


async def test_previews_dvr_and_clips_with_nginx_rtmp_and_ffmpeg(managed: Managed):
    m = managed
    created = await m.api.post(
        "/api/events",
        json={"title": "DVR", "visibility": "private", "recording": True,
              "dvr_window_seconds": 60},
        headers=m.headers,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    event = created.json()
    started = await m.api.post(f"/api/events/{event['id']}/start", headers=m.headers)
    assert started.status_code == 200, started.text
    encoder = await _publish(event["ingest"]["publish_url"], m.tmp / "encoder.log")
    try:
        stream: dict[str, Any] = {}

        async def thumbnail_served() -> bool:
            nonlocal stream
            stream = await _stream(m, event["id"])
            url = stream["thumbnail_url"]
            return url is not None and (await m.cdn.get(url)).status_code == 200

        await _until_async(thumbnail_served, 60, lambda: m.log.read_text()[-3000:])
        token = stream["playback_token"]
        assert stream["player"]["dvr_window_seconds"] == 60
        await _jpeg(m, stream["thumbnail_url"])
        listed = await m.api.get("/api/events", headers=m.headers)
        mine = [e for e in listed.json()["items"] if e["id"] == event["id"]]
        assert mine[0]["thumbnail_url"] == stream["thumbnail_url"].split("?", 1)[0]

        # the DVR playlist outgrows nginx-rtmp's own live playlist (12 s)
        dvr_url: str = stream["dvr_url"]
        playlist = ""

        async def dvr_long_enough() -> bool:
            nonlocal playlist
            answer = await m.cdn.get(dvr_url)
            playlist = answer.text if answer.status_code == 200 else ""
            return sum(float(x) for x in _EXTINF.findall(playlist)) >= 24

        await _until_async(dvr_long_enough, 90, lambda: playlist)
        live = (await m.cdn.get(stream["hls_url"])).text
        assert sum(float(x) for x in _EXTINF.findall(live)) <= 16
        assert f".ts?token={token}" in playlist  # segments carry the token on
        await _refused(dvr_url)

        # seek back: a player started at the oldest segment plays from ~20 s before the edge
        oldest = await _first_pts(dvr_url, "-live_start_index", "0")
        edge = await _first_pts(dvr_url)  # hls.js / ffmpeg default: 3 segments from the end
        assert edge - oldest >= 14, (oldest, edge)
        code, out = await _run(
            "ffmpeg", "-v", "error", "-live_start_index", "0", "-i", dvr_url, "-t", "4",
            "-f", "null", "-",
        )  # fmt: skip
        assert code == 0, out

        # a clip of 6 s from the DVR window, by wall-clock time
        stamps = [dt.datetime.fromisoformat(re.sub(r"(\d\d)(\d\d)$", r"\1:\2", s))
                  for s in _PDT.findall(playlist)]  # fmt: skip
        start = stamps[1] + dt.timedelta(seconds=1)
        body = {"title": "Highlight", "start_at": start.isoformat(),
                "end_at": (start + dt.timedelta(seconds=6)).isoformat()}  # fmt: skip
        clip = await _clip(m, event["id"], body)
        clip_url = f"{clip['playback_url']}?token={token}"
        assert 5.5 <= await _duration(clip_url) <= 7.5
        assert 5.5 <= clip["duration_seconds"] <= 7.5
        await _jpeg(m, f"{clip['poster_url']}?token={token}")
        await _refused(clip_url)
    finally:
        if encoder.returncode is None:
            encoder.kill()
            await encoder.wait()

    # the event ends: its recording is published with a poster
    stopped = await m.api.post(f"/api/events/{event['id']}/stop", headers=m.headers)
    assert stopped.status_code == 200, stopped.text
    recordings: list[dict[str, Any]] = []

    async def published() -> bool:
        nonlocal recordings
        answer = await m.api.get(f"/api/events/{event['id']}/recordings", headers=m.headers)
        recordings = answer.json()
        return bool(recordings)

    await _until_async(published, 60, lambda: m.log.read_text()[-3000:])
    poster = recordings[0]["poster_url"]
    assert poster is not None
    assert poster.endswith(f"/vod/{event['id']}/poster.jpg")
    got = (await m.api.get(f"/api/events/{event['id']}", headers=m.headers)).json()
    assert got["poster_url"] == poster
    assert got["thumbnail_url"] is None
    token = (await _stream(m, event["id"]))["playback_token"]
    await _jpeg(m, f"{poster}?token={token}")
    # the VOD itself leaves the live window and the thumbnail behind
    assert not (m.tmp / "media" / "vod" / event["id"] / "dvr").exists()

    # a clip of the recording
    clip = await _clip(
        m, event["id"], {"source": "recording", "start_seconds": 3, "end_seconds": 7}
    )
    assert 3.5 <= await _duration(f"{clip['playback_url']}?token={token}") <= 5.5
    await _refused(clip["playback_url"])
