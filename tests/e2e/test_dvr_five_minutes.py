"""A DVR seek 5 minutes back plays: a real `bigfootlive serve` with its managed nginx-rtmp and
an ffmpeg encoder that sends 10 minutes of video at four times real time (so the test takes
about two minutes, not ten). The event's container copies it into the DVR playlist
(10-minute window) from when it joins: under a loaded machine the copy joined late enough to
lose 150 s of content at six times real time (and 270 s with a soak benchmark running beside
the suite), so the rate is four and the encoder sends enough for 5.5 minutes to be kept even
then. A player started at the segment 5 minutes before the live edge decodes from there."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from tests.e2e.test_broadcast_previews_live import _first_pts, _run, _stream, managed  # noqa: F401
from tests.e2e.test_managed_media_server import Managed, _until_async

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

_EXTINF = re.compile(r"^#EXTINF:([0-9.]+)", re.MULTILINE)
CONTENT_SECONDS = 600
READ_RATE = 4  # times real time: the container's DVR copy joins a few seconds after go-live
SEEK_SECONDS = 300


async def test_a_dvr_seek_five_minutes_back_plays(managed: Managed) -> None:  # noqa: F811
    m = managed
    created = await m.api.post(
        "/api/events",
        json={"title": "Long DVR", "visibility": "public", "dvr_window_seconds": 600},
        headers=m.headers,
    )
    assert created.status_code == 201, created.text
    event = created.json()
    started = await m.api.post(f"/api/events/{event['id']}/start", headers=m.headers)
    assert started.status_code == 200, started.text
    args = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-readrate", str(READ_RATE),
        "-f", "lavfi", "-i", f"testsrc=size=160x90:rate=10:duration={CONTENT_SECONDS}",
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "20",
        "-pix_fmt", "yuv420p", "-b:v", "100k", "-f", "flv", event["ingest"]["publish_url"],
    ]  # fmt: skip
    with (m.tmp / "fast-encoder.log").open("ab") as log:
        encoder = await asyncio.create_subprocess_exec(*args, stdout=log, stderr=log)
    try:
        stream: dict[str, Any] = {}

        async def has_dvr() -> bool:
            nonlocal stream
            stream = await _stream(m, event["id"])
            return bool(stream.get("dvr_url"))

        await _until_async(has_dvr, 60, lambda: m.log.read_text()[-3000:])
        dvr_url: str = stream["dvr_url"]
        playlist = ""

        async def six_minutes_kept() -> bool:
            nonlocal playlist
            answer = await m.cdn.get(dvr_url)
            playlist = answer.text if answer.status_code == 200 else ""
            return sum(float(x) for x in _EXTINF.findall(playlist)) >= SEEK_SECONDS + 30

        await _until_async(
            six_minutes_kept,
            CONTENT_SECONDS / READ_RATE + 60,
            lambda: (
                f"{sum(float(x) for x in _EXTINF.findall(playlist))} s kept; "
                f"encoder exit {encoder.returncode}; {m.log.read_text()[-1500:]}"
            ),
        )
        durations = [float(x) for x in _EXTINF.findall(playlist)]
        total = sum(durations)
        # the segment that holds the moment 5 minutes before the live edge
        elapsed, index = 0.0, 0
        while elapsed + durations[index] <= total - SEEK_SECONDS:
            elapsed += durations[index]
            index += 1
        start = await _first_pts(dvr_url, "-live_start_index", str(index))
        newest = await _first_pts(dvr_url, "-live_start_index", str(len(durations) - 1))
        assert newest - start >= SEEK_SECONDS - durations[index] - 1, (start, newest)
        code, out = await _run(
            "ffmpeg", "-v", "error", "-live_start_index", str(index), "-i", dvr_url, "-t", "5",
            "-f", "null", "-",
        )  # fmt: skip
        assert code == 0, out
    finally:
        if encoder.returncode is None:
            encoder.kill()
        await encoder.wait()
