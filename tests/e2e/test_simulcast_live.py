"""Simulcast end to end: a real `bigfootlive serve` with its managed nginx-rtmp, an ffmpeg
encoder, and a second nginx-rtmp on its own ports playing the destinations' role.

The event's container pulls the ingest with the internal credential and copies it to each
destination: the good one's HLS plays (ffprobe), one refused by the destination's on_publish
and one on a closed port go `retrying` then `failed` with the reason, while the good one stays
live; the good one reconnects when its server comes back; everything stops with the event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.typing import Subprotocol

from tests.e2e.test_managed_media_server import (
    Managed,
    _publish,
    _until_async,
    managed_server,
)
from tests.fixtures import nginx_rtmp, services

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

GOOD_KEY = "restream-good-key-7d1f"
BAD_KEY = "restream-refused-key-9a2c"


@pytest.fixture
async def managed(tmp_path: Path) -> AsyncIterator[Managed]:
    async with managed_server(
        tmp_path,
        api_timeout=30,  # a loaded machine
        SIMULCAST_MAX_ATTEMPTS="3",
        SIMULCAST_RETRY_MIN_SECONDS="0.5",
        SIMULCAST_RETRY_MAX_SECONDS="1",
        CONTAINER_HEARTBEAT_INTERVAL_SECONDS="1",
    ) as m:
        yield m


@pytest.fixture
async def destination() -> AsyncIterator[nginx_rtmp.NginxRtmp]:
    """The second nginx-rtmp: `live/<key>` accepts any local publish and writes HLS;
    `ingest/<key>` asks an on_publish hook that is not there, so every publish is refused."""
    closed = services.free_port()
    # nginx's workers drop privileges: a directory they can reach (pytest's tmp_path is 0700)
    base = Path(tempfile.mkdtemp(prefix="bfl-simulcast-"))
    server = nginx_rtmp.NginxRtmp(base=base, hook=f"http://127.0.0.1:{closed}/")
    server.start()
    await server.wait_ready()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


async def _states(m: Managed, event_id: str) -> dict[str, dict[str, Any]]:
    answer = await m.api.get(f"/api/events/{event_id}/simulcast", headers=m.headers)
    assert answer.status_code == 200, answer.text
    return {d["name"]: d for d in answer.json()}


async def _probe(url: str) -> str:
    probe = await asyncio.create_subprocess_exec(
        "ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height",
        "-of", "csv=p=0", url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(probe.communicate(), 30)
    return out.decode() + err.decode()


async def test_simulcast_to_a_second_nginx_rtmp(
    managed: Managed, destination: nginx_rtmp.NginxRtmp
):
    m, dest = managed, destination
    created = await m.api.post("/api/events", json={"title": "Simulcast"}, headers=m.headers)
    assert created.status_code == 201, created.text
    event = created.json()
    base = f"/api/events/{event['id']}/simulcast"
    closed_port = services.free_port()
    for name, url, key in (
        ("good", f"rtmp://127.0.0.1:{dest.rtmp_port}/live", GOOD_KEY),
        ("refused", f"rtmp://127.0.0.1:{dest.rtmp_port}/ingest", BAD_KEY),
        ("closed", f"rtmp://127.0.0.1:{closed_port}/app", "closed-port-key-0000"),
    ):
        added = await m.api.post(
            base, json={"platform": "custom", "name": name, "url": url, "stream_key": key},
            headers=m.headers,
        )  # fmt: skip
        assert added.status_code == 201, added.text
    started = await m.api.post(f"/api/events/{event['id']}/start", headers=m.headers)
    assert started.status_code == 200, started.text
    assert all(d["state"] == "idle" for d in (await _states(m, event["id"])).values())

    # the streamer's socket (the studio's channel): each state change arrives as a system message
    told: list[dict[str, Any]] = []
    token = m.headers["Authorization"].removeprefix("Bearer ")
    socket = await websockets.connect(
        f"ws://{m.api.base_url.host}:{m.api.base_url.port}/ws/events/{event['id']}",
        subprotocols=[Subprotocol("bigfootlive.v1"), Subprotocol(f"bearer.{token}")],
    )

    async def listen() -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in socket:
                frame = json.loads(raw)  # one message, or a batch of them
                for message in frame if isinstance(frame, list) else [frame]:
                    if message.get("kind") == "simulcast_state":
                        told.append(message)

    listener = asyncio.create_task(listen())
    encoder = await _publish(event["ingest"]["publish_url"], m.tmp / "encoder.log")
    try:
        states: dict[str, dict[str, Any]] = {}

        async def reached(want: dict[str, set[str]]) -> bool:
            nonlocal states
            states = await _states(m, event["id"])
            return all(states[name]["state"] in ok for name, ok in want.items())

        def why() -> str:
            return f"{states} {m.log.read_text()[-2000:]}"

        # the good destination goes live; the refusing ones give up with their reason
        await _until_async(
            lambda: reached({"good": {"live"}, "refused": {"failed"}, "closed": {"failed"}}),
            90, why,
        )  # fmt: skip
        assert states["refused"]["attempts"] == 3
        assert states["refused"]["state_reason"]
        assert states["closed"]["state_reason"]
        assert BAD_KEY not in str(states)
        assert states["good"]["state_reason"] is None
        # ...and the streamer was told, in words, with the reason
        failed = [t for t in told if t["name"] == "refused" and t["state"] == "failed"]
        assert failed, told
        assert failed[-1]["reason"] == states["refused"]["state_reason"]
        assert failed[-1]["text"].startswith("Simulcast to refused: failed (")
        assert {"connecting", "live"} <= {t["state"] for t in told if t["name"] == "good"}
        assert BAD_KEY not in json.dumps(told)

        # the destination plays what we push (no re-encode: the encoder's 320x180 H.264)
        playlist = f"{dest.http_url}/hls/{GOOD_KEY}.m3u8"
        async with httpx.AsyncClient(timeout=5) as plain:

            async def has_playlist() -> bool:
                answer = await plain.get(playlist)
                return answer.status_code == 200 and "#EXTINF" in answer.text

            await _until_async(has_playlist, 30, dest.error_log)
        assert "h264,320,180" in await _probe(playlist)

        # the destination drops: the good one retries, then reconnects when it is back
        # (SIGTERM: nginx's fast shutdown closes the connections; SIGQUIT would wait for them)
        assert dest.process is not None
        dest.process.terminate()
        dest.process.wait(10)
        await _until_async(lambda: reached({"good": {"retrying", "connecting"}}), 30, why)
        dest.start()
        await dest.wait_ready()
        await _until_async(lambda: reached({"good": {"live"}}), 60, why)
        assert states["good"]["attempts"] >= 2
    finally:
        if encoder.returncode is None:
            encoder.kill()
            await encoder.wait()
        await socket.close()
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener

    # the event ends: every push stops
    stopped = await m.api.post(f"/api/events/{event['id']}/stop", headers=m.headers)
    assert stopped.status_code == 200, stopped.text
    await _until_async(lambda: reached({"good": {"stopped"}, "refused": {"failed"}}), 30, why)

    assert states["refused"]["state_reason"]  # a failure keeps its reason after the event

    # the destinations' keys never reach a log
    logs = m.log.read_text()
    for key in (GOOD_KEY, BAD_KEY):
        assert key not in logs
