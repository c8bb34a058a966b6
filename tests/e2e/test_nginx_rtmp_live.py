"""Go live for real: nginx-rtmp + ffmpeg + BigfootLive on a real socket (PostgreSQL + Redis).

One scenario per test would restart nginx and re-publish for every assertion; the publish is
the expensive part, so the steps of one broadcast are asserted in order within one test, and
the reconnect-window ending is its own test.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
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
from tests.fixtures import nginx_rtmp, services
from tests.fixtures.factories import Account, Factory

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

RECONNECT_WINDOW = 3.0


@pytest.fixture
def backend() -> str:
    return "postgres"


@pytest.fixture
def api_port() -> int:
    return services.free_port()


@pytest.fixture
def nginx_ports() -> tuple[int, int]:
    return services.free_port(), services.free_port()


@pytest.fixture
def nginx_base() -> Iterator[Path]:
    # Not under tmp_path: nginx's unprivileged workers must reach it (pytest's dirs are 0700).
    base = Path(tempfile.mkdtemp(prefix="bfl-nginx-"))
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def settings_overrides(api_port, nginx_ports, nginx_base) -> dict[str, Any]:
    rtmp_port, http_port = nginx_ports
    return {
        "port": api_port,
        "rtmp_port": rtmp_port,
        "rtmp_ingest_host": "127.0.0.1",
        "media_server": "nginx-rtmp",
        "cdn_base_url": f"http://127.0.0.1:{http_port}",
        "nginx_rtmp_stat_url": f"http://127.0.0.1:{http_port}/stat",
        # health measures the frame rate from nginx's own HLS output
        "nginx_rtmp_hls_path": str(nginx_base / "hls"),
        "reconnect_window_seconds": RECONNECT_WINDOW,
        "reconnect_sweep_interval_seconds": 0.5,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
    }


@dataclass
class Live:
    api: httpx.AsyncClient
    state: AppState
    nginx: nginx_rtmp.NginxRtmp
    streamer: Account
    logs: Path


@pytest.fixture
async def live(
    settings: Settings, api_port: int, nginx_ports, nginx_base: Path
) -> AsyncIterator[Live]:
    services.require(nginx_rtmp.available(), "nginx with libnginx-mod-rtmp and ffmpeg")
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app, **uvicorn_options(host="127.0.0.1", port=api_port, log_level="warning", ws="none")
        )
    )
    serving = asyncio.create_task(server.serve())
    base = nginx_base
    nginx: nginx_rtmp.NginxRtmp | None = None
    try:
        for _ in range(100):
            if server.started:
                break
            await asyncio.sleep(0.05)
        assert server.started, "uvicorn did not start"
        state: AppState = app.state.bigfoot
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=10) as api:
            factory = Factory(state, api)
            tenant = await factory.tenant()
            admin = await factory.user(tenant, role=Role.ADMIN)
            streamer = await factory.user(tenant, role=Role.STREAMER)
            created = await api.post("/api/api-keys", json={"name": "nginx"}, headers=admin.headers)
            assert created.status_code == 201, created.text
            hook = (
                f"http://127.0.0.1:{api_port}/api/streaming/hooks/nginx-rtmp"
                f"?api_key={created.json()['key']}"
            )
            rtmp_port, http_port = nginx_ports
            nginx = nginx_rtmp.NginxRtmp(
                base=base, hook=hook, rtmp_port=rtmp_port, http_port=http_port
            )
            nginx.start()
            await nginx.wait_ready()
            yield Live(api=api, state=state, nginx=nginx, streamer=streamer, logs=base / "logs")
    finally:
        if nginx is not None:
            nginx.stop()
        server.should_exit = True
        await serving


async def _new_live_ready_event(live: Live, **fields: Any) -> dict[str, Any]:
    created = await live.api.post(
        "/api/events", json={"title": "Launch", **fields}, headers=live.streamer.headers
    )
    assert created.status_code == 201, created.text
    event = created.json()
    started = await live.api.post(f"/api/events/{event['id']}/start", headers=live.streamer.headers)
    assert started.status_code == 200, started.text
    return event


async def _wait_status(live: Live, event_id: str, status: str, within: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    body: dict[str, Any] = {}
    while loop.time() < deadline:
        body = (await live.api.get(f"/api/events/{event_id}", headers=live.streamer.headers)).json()
        if body["status"] == status:
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"event stayed {body.get('status')}, expected {status}")


async def _wait_exit(proc: asyncio.subprocess.Process, within: float) -> int | None:
    with contextlib.suppress(TimeoutError):
        return await asyncio.wait_for(proc.wait(), within)
    return None


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


async def test_broadcast_goes_live_serves_hls_by_playback_id_and_stop_ends_it(live: Live):
    event = await _new_live_ready_event(live)
    config = (
        await live.api.get(
            f"/api/streaming/events/{event['id']}/stream", headers=live.streamer.headers
        )
    ).json()
    key = config["ingest"]["stream_key"]
    assert config["ingest"]["publish_url"].endswith(f"/ingest/{key}")
    assert key not in config["hls_url"]

    encoder = await nginx_rtmp.publish(config["ingest"]["publish_url"], log=live.logs / "ff1.log")
    try:
        # 1. the publish reaches BigfootLive through nginx's on_publish: the event is live
        await _wait_status(live, event["id"], "live", within=15)

        # 2. HLS is written under the playback id, never under the key
        playlist = live.nginx.hls_dir / f"{event['playback_id']}.m3u8"
        async with httpx.AsyncClient(timeout=5) as cdn:
            for _ in range(100):
                if playlist.exists() and ".ts" in playlist.read_text():
                    break
                await asyncio.sleep(0.2)
            m3u8 = await cdn.get(config["hls_url"])
            assert m3u8.status_code == 200, m3u8.text
            assert "#EXTM3U" in m3u8.text
            segment = next(line for line in m3u8.text.splitlines() if line.endswith(".ts"))
            ts = await cdn.get(config["hls_url"].rsplit("/", 1)[0] + "/" + segment)
            assert ts.status_code == 200
            assert len(ts.content) > 1000
        files = [p.name for p in live.nginx.hls_dir.iterdir()]
        assert files
        assert all(name.startswith(event["playback_id"]) for name in files), files
        assert not any(key in name for name in files)

        # 3. health reads nginx's /stat: a plausible bitrate and frame rate
        health: dict[str, Any] = {}
        for _ in range(30):
            health = (
                await live.api.get(
                    f"/api/streaming/events/{event['id']}/health", headers=live.streamer.headers
                )
            ).json()
            current = health["current"]
            if current and current["uptime_seconds"] >= 4 and current["fps_source"] == "measured":
                break
            await asyncio.sleep(0.5)
        current = health["current"]
        assert health["verdict"] == "ok", health
        assert 100 < current["bitrate_kbps"] < 5000, current
        assert 25 <= current["fps"] <= 35, current  # ffmpeg publishes 30 fps
        assert (current["width"], current["height"]) == (640, 360)
        assert current["video_codec"] == "H264"

        # 4. a second publisher with the same key is refused while the first is live
        second = await nginx_rtmp.publish(
            config["ingest"]["publish_url"], seconds=3, log=live.logs / "ff2.log"
        )
        assert await _wait_exit(second, 20) not in (None, 0)

        # 5. a wrong key is refused by nginx itself (ffmpeg fails, no HLS for it)
        wrong = await nginx_rtmp.publish(
            config["ingest"]["server_url"] + "/sk_not-a-real-key", seconds=3,
            log=live.logs / "ff3.log",
        )  # fmt: skip
        assert await _wait_exit(wrong, 20) not in (None, 0)
        assert not any("not-a-real-key" in p.name for p in live.nginx.hls_dir.iterdir())
        assert encoder.returncode is None, "the legitimate publisher must still be running"

        # 6. stopping the event ends the publish (nginx drops it on the next on_update)
        stopped = await live.api.post(
            f"/api/events/{event['id']}/stop", headers=live.streamer.headers
        )
        assert stopped.json()["status"] == "ended"
        assert await _wait_exit(encoder, 15) is not None, "the encoder was not disconnected"

        # 7. an ended event's key is refused
        again = await nginx_rtmp.publish(
            config["ingest"]["publish_url"], seconds=3, log=live.logs / "ff4.log"
        )
        assert await _wait_exit(again, 20) not in (None, 0)
    finally:
        await _kill(encoder)


async def test_killed_encoder_ends_the_event_after_the_reconnect_window(live: Live):
    event = await _new_live_ready_event(live)
    config = (
        await live.api.get(
            f"/api/streaming/events/{event['id']}/stream", headers=live.streamer.headers
        )
    ).json()
    encoder = await nginx_rtmp.publish(config["ingest"]["publish_url"], log=live.logs / "ff.log")
    try:
        await _wait_status(live, event["id"], "live", within=15)
        await asyncio.sleep(1)
    finally:
        await _kill(encoder)
    await _wait_status(live, event["id"], "reconnecting", within=10)
    ended = await _wait_status(live, event["id"], "ended", within=RECONNECT_WINDOW + 5)
    assert ended["ended_reason"] == "publisher_gone"


async def _uptime(live: Live, event_id: str) -> float:
    health = await live.api.get(
        f"/api/streaming/events/{event_id}/health", headers=live.streamer.headers
    )
    current = health.json()["current"] or {}
    return float(current.get("uptime_seconds") or 0.0)


async def test_a_key_rotated_while_live_keeps_the_publisher_and_its_end_is_seen(live: Live):
    """nginx names the running publisher by its old key in every on_update and in its
    publish_done: the publisher stays on air, its leaving marks the event `reconnecting`,
    and the old key publishes nothing new."""
    event = await _new_live_ready_event(live)
    config = (
        await live.api.get(
            f"/api/streaming/events/{event['id']}/stream", headers=live.streamer.headers
        )
    ).json()
    old_url = config["ingest"]["publish_url"]
    encoder = await nginx_rtmp.publish(old_url, log=live.logs / "ff-rotate.log")
    try:
        await _wait_status(live, event["id"], "live", within=15)
        rotated = await live.api.post(
            f"/api/events/{event['id']}/stream-key", headers=live.streamer.headers
        )
        assert rotated.status_code == 200, rotated.text
        assert rotated.json()["publish_url"] != old_url
        # three of nginx's on_update rounds (one a second here) with the old key go by
        since = await _uptime(live, event["id"])
        for _ in range(60):
            if await _uptime(live, event["id"]) >= since + 3.5:
                break
            await asyncio.sleep(0.3)
        assert await _uptime(live, event["id"]) >= since + 3.5, "the stream did not go on"
        assert encoder.returncode is None, "the running publisher was dropped by the rotation"
        assert (await live.api.get(
            f"/api/events/{event['id']}", headers=live.streamer.headers
        )).json()["status"] == "live"  # fmt: skip
    finally:
        await _kill(encoder)
    # its publish_done, with the old key, is the event's
    await _wait_status(live, event["id"], "reconnecting", within=10)
    again = await nginx_rtmp.publish(old_url, seconds=3, log=live.logs / "ff-old-key.log")
    assert await _wait_exit(again, 20) not in (None, 0), "a new publish with the old key worked"
