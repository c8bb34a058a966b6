"""Recording without a ladder, end to end on a real socket: nginx-rtmp with BigfootLive's
callbacks (its on_play refuses pulls without a credential), ffmpeg publishing 10 fps with a
keyframe every 2 s, the event's worker recording with the copy-only recorder, and the health
endpoint measuring the stream itself."""

from __future__ import annotations

import asyncio
import inspect
import json
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from bigfootlive.app import create_app
from bigfootlive.authz.roles import Role
from bigfootlive.composition import AppState
from bigfootlive.config import Settings
from bigfootlive.serving import uvicorn_options
from tests.containers.helpers import FAST, row_of
from tests.fixtures import nginx_rtmp, services
from tests.fixtures.factories import Account, Factory

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

FPS = 10
GOP_SECONDS = 2
PUBLISH_SECONDS = 14


@pytest.fixture
def backend() -> str:
    return "postgres"


@pytest.fixture
def ports() -> tuple[int, int, int]:
    return services.free_port(), services.free_port(), services.free_port()


@pytest.fixture
def settings_overrides(ports, tmp_path: Path) -> dict[str, Any]:
    api_port, rtmp_port, http_port = ports
    return {
        **FAST,
        "port": api_port,
        "rtmp_port": rtmp_port,
        "media_server": "nginx-rtmp",
        "cdn_base_url": f"http://127.0.0.1:{http_port}",
        "nginx_rtmp_stat_url": f"http://127.0.0.1:{http_port}/stat",
        "nginx_rtmp_hls_path": str(tmp_path / "nginx" / "hls"),
        "container_runtime": "inprocess",
        "container_transcoder": False,
        "container_stop_grace_seconds": 60.0,
        "transcoder_input_url": f"rtmp://127.0.0.1:{rtmp_port}/live/{{playback_id}}",
        "transcoder_segment_seconds": 1.0,
        "recordings_dir": str(tmp_path / "media"),
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
    }


@dataclass
class Stack:
    api: httpx.AsyncClient
    state: AppState
    nginx: nginx_rtmp.NginxRtmp
    streamer: Account
    viewer: Account


@pytest.fixture
async def stack(settings: Settings, ports, tmp_path: Path) -> AsyncIterator[Stack]:
    services.require(nginx_rtmp.available(), "nginx with libnginx-mod-rtmp and ffmpeg")
    api_port, rtmp_port, http_port = ports
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app, **uvicorn_options(host="127.0.0.1", port=api_port, log_level="warning", ws="none")
        )
    )
    serving = asyncio.create_task(server.serve())
    nginx: nginx_rtmp.NginxRtmp | None = None
    try:
        await wait_until(lambda: server.started, within=10)
        state: AppState = app.state.bigfoot
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=10) as api:
            factory = Factory(state, api)
            tenant = await factory.tenant()
            admin = await factory.user(tenant, role=Role.ADMIN)
            created = await api.post("/api/api-keys", json={"name": "nginx"}, headers=admin.headers)
            assert created.status_code == 201, created.text
            hook = (
                f"http://127.0.0.1:{api_port}/api/streaming/hooks/nginx-rtmp"
                f"?api_key={created.json()['key']}"
            )
            nginx = nginx_rtmp.NginxRtmp(
                base=tmp_path / "nginx", hook=hook, rtmp_port=rtmp_port, http_port=http_port
            )
            nginx.start()
            await nginx.wait_ready()
            yield Stack(
                api=api,
                state=state,
                nginx=nginx,
                streamer=await factory.user(tenant, role=Role.STREAMER),
                viewer=await factory.user(tenant, role=Role.VIEWER),
            )
    finally:
        if nginx is not None:
            nginx.stop()
        server.should_exit = True
        await serving


async def wait_until(check: Callable[[], Any], *, within: float) -> Any:
    """Poll `check` (sync or async) until it returns something truthy; that is returned."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"not met within {within} s")
        await asyncio.sleep(0.2)


async def _publish(url: str, log: Path) -> asyncio.subprocess.Process:
    """An encoder sending 10 fps with a keyframe every 2 s (its metadata says nothing else)."""
    with log.open("ab") as handle:
        return await asyncio.create_subprocess_exec(
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
            "-f", "lavfi", "-i", f"testsrc=size=320x240:rate={FPS}",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
            "-t", str(PUBLISH_SECONDS),
            "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
            "-g", str(FPS * GOP_SECONDS), "-keyint_min", str(FPS * GOP_SECONDS),
            "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-b:v", "300k",
            "-c:a", "aac", "-b:a", "64k", "-f", "flv", url,
            stdout=handle, stderr=handle,
        )  # fmt: skip


def _ffprobe(target: Path) -> dict[str, Any]:
    out = subprocess.run(
        [
            "ffprobe", "-v", "error", "-show_entries",
            "stream=codec_type,codec_name,width,height:format=duration", "-of", "json",
            str(target),
        ],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout)
    return result


async def test_a_tenant_events_recording_and_measured_health(stack: Stack, tmp_path: Path):
    api, state = stack.api, stack.state
    created = await api.post(
        "/api/events",
        json={"title": "Members only", "visibility": "tenant", "recording": True},
        headers=stack.streamer.headers,
    )
    assert created.status_code == 201, created.text
    event = created.json()
    started = await api.post(f"/api/events/{event['id']}/start", headers=stack.streamer.headers)
    assert started.status_code == 200, started.text
    config = (
        await api.get(f"/api/streaming/events/{event['id']}/stream", headers=stack.streamer.headers)
    ).json()
    encoder = await _publish(config["ingest"]["publish_url"], tmp_path / "encoder.log")
    try:
        # 1. The copy-only recorder's pull of a tenant event is let in by on_play.
        recorded = Path(state.settings.recordings_dir) / "live" / event["playback_id"] / "source"

        def segments() -> int:
            playlist = recorded / "index.m3u8"
            return playlist.read_text().count("#EXTINF") if playlist.exists() else 0

        await wait_until(lambda: segments() >= 3, within=40)

        # 2. Health is measured from the media: 10 fps published reads about 10, the keyframe
        #    interval is reported, and our own pull is no viewer.
        async def measured() -> dict[str, Any] | None:
            body = (
                await api.get(
                    f"/api/streaming/events/{event['id']}/health", headers=stack.streamer.headers
                )
            ).json()
            current = body.get("current") or {}
            if current.get("fps_source") == "measured" and current.get("keyframe_interval_seconds"):
                return body
            return None

        health = await wait_until(measured, within=40)
        current = health["current"]
        assert abs(current["fps"] - FPS) <= 1, current
        assert abs(current["keyframe_interval_seconds"] - GOP_SECONDS) <= 0.5, current
        assert current["viewers"] == 0, current
        assert "low_fps" in health["reasons"]  # 10 fps is below the healthy floor, honestly

        # 3. The worker's CPU figure is real (one psutil.Process kept across heartbeats).
        async def cpu_seen() -> bool:
            row = await row_of(state, event["id"])
            return row is not None and (row.cpu_percent or 0) > 0

        await wait_until(cpu_seen, within=30)
        assert await asyncio.wait_for(encoder.wait(), PUBLISH_SECONDS + 30) == 0
    finally:
        if encoder.returncode is None:
            encoder.kill()
            await encoder.wait()

    # 4. Stopped: the recording is published as VOD, plays, and the stream endpoint lists it
    #    with the token the viewer needs.
    stopped = await api.post(f"/api/events/{event['id']}/stop", headers=stack.streamer.headers)
    assert stopped.status_code == 200, stopped.text

    async def recording() -> dict[str, Any] | None:
        listed = await api.get(
            f"/api/events/{event['id']}/recordings", headers=stack.viewer.headers
        )
        body = listed.json() if listed.status_code == 200 else []
        return body[0] if body else None

    vod = await wait_until(recording, within=90)
    assert vod["renditions"] == ["source"]
    assert vod["duration_seconds"] >= PUBLISH_SECONDS - 6
    vod_dir = Path(state.settings.recordings_dir) / "vod" / event["id"]
    found = _ffprobe(vod_dir / "master.m3u8")
    video = [s for s in found["streams"] if s["codec_type"] == "video"]
    assert [(s["codec_name"], s["width"], s["height"]) for s in video] == [("h264", 320, 240)]
    assert {s["codec_name"] for s in found["streams"]} == {"h264", "aac"}
    assert float(found["format"]["duration"]) >= PUBLISH_SECONDS - 6

    config = (
        await api.get(f"/api/streaming/events/{event['id']}/stream", headers=stack.viewer.headers)
    ).json()
    token = config["playback_token"]
    assert config["vod_urls"] == [f"{vod['playback_url']}?token={token}"]
    assert config["abr_master_url"] is None  # no ladder runs
    assert config["token_rules"]["query_parameter"] == "token"
    assert set(config["token_rules"]["applies_to"]) == {"hls_url", "vod_urls", "poster_url"}
    # the recording's first frame is its poster, and the VOD leaves the DVR window behind
    assert config["poster_url"] == f"{vod['poster_url']}?token={token}"
    assert (vod_dir / "poster.jpg").read_bytes()[:2] == b"\xff\xd8"
    assert not (vod_dir / "dvr").exists()
