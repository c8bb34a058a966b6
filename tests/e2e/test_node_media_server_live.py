"""Go live for real through Node Media Server: our wrapper script (streaming/nms) runs the npm
`node-media-server` pinned in its package-lock.json, ffmpeg publishes, BigfootLive decides
(PostgreSQL + Redis, on a real socket). The publish is the expensive part, so the steps of one
broadcast are asserted in order within one test."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import tempfile
import uuid
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
from tests.fixtures import nginx_rtmp, node_media_server, services
from tests.fixtures.factories import Account, Factory

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

RECONNECT_WINDOW = 3.0
API_SECRET = secrets.token_hex(16)


@pytest.fixture
def backend() -> str:
    return "postgres"


@pytest.fixture
def ports() -> tuple[int, int, int]:
    return services.free_port(), services.free_port(), services.free_port()


@pytest.fixture
def base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bfl-nms-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def settings_overrides(ports) -> dict[str, Any]:
    api_port, rtmp_port, http_port = ports
    return {
        "port": api_port,
        "rtmp_port": rtmp_port,
        "rtmp_ingest_host": "127.0.0.1",
        "media_server": "node-media-server",
        "cdn_base_url": f"http://127.0.0.1:{http_port}",
        "nms_api_url": f"http://127.0.0.1:{http_port}",
        "nms_api_secret": API_SECRET,
        "reconnect_window_seconds": RECONNECT_WINDOW,
        "reconnect_sweep_interval_seconds": 0.5,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
    }


@dataclass
class Live:
    api: httpx.AsyncClient
    state: AppState
    nms: node_media_server.NodeMediaServer
    streamer: Account
    logs: Path


@pytest.fixture
async def live(settings: Settings, ports, base: Path) -> AsyncIterator[Live]:
    services.require(node_media_server.available(), "node, node-media-server (.tools/nms), ffmpeg")
    api_port, rtmp_port, http_port = ports
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app, **uvicorn_options(host="127.0.0.1", port=api_port, log_level="warning", ws="none")
        )
    )
    serving = asyncio.create_task(server.serve())
    nms: node_media_server.NodeMediaServer | None = None
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
            created = await api.post("/api/api-keys", json={"name": "nms"}, headers=admin.headers)
            assert created.status_code == 201, created.text
            nms = node_media_server.NodeMediaServer(
                base=base,
                hook=f"http://127.0.0.1:{api_port}/api/streaming/hooks/node-media-server",
                api_key=created.json()["key"],
                api_secret=API_SECRET,
                rtmp_port=rtmp_port,
                http_port=http_port,
            )
            nms.start()
            await nms.wait_ready()
            yield Live(api=api, state=state, nms=nms, streamer=streamer, logs=base)
    finally:
        if nms is not None:
            nms.stop()
        server.should_exit = True
        await serving


async def _event(live: Live, **fields: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    created = await live.api.post(
        "/api/events", json={"title": "NMS", **fields}, headers=live.streamer.headers
    )
    assert created.status_code == 201, created.text
    event = created.json()
    started = await live.api.post(f"/api/events/{event['id']}/start", headers=live.streamer.headers)
    assert started.status_code == 200, started.text
    config = await live.api.get(
        f"/api/streaming/events/{event['id']}/stream", headers=live.streamer.headers
    )
    return event, config.json()


async def _status(live: Live, event: dict[str, Any]) -> str:
    body = (await live.api.get(f"/api/events/{event['id']}", headers=live.streamer.headers)).json()
    return str(body["status"])


async def _wait_status(live: Live, event: dict[str, Any], status: str, within: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    seen = ""
    while loop.time() < deadline:
        seen = await _status(live, event)
        if seen == status:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"event stayed {seen}, expected {status}\n{live.nms.output()}")


async def _wait_exit(proc: asyncio.subprocess.Process, within: float) -> int | None:
    with contextlib.suppress(TimeoutError):
        return await asyncio.wait_for(proc.wait(), within)
    return None


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


async def _flv_head(url: str) -> tuple[int, bytes]:
    """The status and first bytes of an HTTP-FLV play (a live stream never ends by itself)."""
    async with httpx.AsyncClient(timeout=10) as client, client.stream("GET", url) as response:
        head = b""
        async for chunk in response.aiter_bytes():
            head += chunk
            if len(head) >= 13:
                break
        return response.status_code, head


async def test_publish_with_the_key_goes_live_viewers_need_a_token_and_stop_kicks(live: Live):
    event, config = await _event(live, visibility="tenant")
    publish_url = config["ingest"]["publish_url"]
    assert publish_url.endswith(
        f"/live/{event['playback_id']}?key={config['ingest']['stream_key'].split('=', 1)[1]}"
    )

    # 1. a wrong key is refused: ffmpeg fails, the event is still waiting for its encoder
    wrong = await nginx_rtmp.publish(
        publish_url.split("?", 1)[0] + "?key=sk_not-a-real-key",
        seconds=5,
        log=live.logs / "ff0.log",
    )
    assert await _wait_exit(wrong, 20) not in (None, 0)
    assert await _status(live, event) == "ready"

    encoder = await nginx_rtmp.publish(publish_url, log=live.logs / "ff1.log")
    try:
        # 2. the right key: NMS holds the publish until BigfootLive says yes; the event is live
        await _wait_status(live, event, "live", within=15)

        # health reads NMS's REST API (the frame rate is the encoder's declared one: NMS
        # writes no segments this host could measure)
        current: dict[str, Any] = {}
        for _ in range(40):
            health = (
                await live.api.get(
                    f"/api/streaming/events/{event['id']}/health", headers=live.streamer.headers
                )
            ).json()
            current = health["current"] or {}
            if current.get("uptime_seconds", 0) >= 3 and current.get("bitrate_kbps"):
                break
            await asyncio.sleep(0.5)
        assert health["verdict"] == "ok", health
        assert (current["width"], current["height"]) == (640, 360)
        assert (current["video_codec"], current["audio_codec"]) == ("H264", "AAC")
        assert 25 <= current["fps"] <= 35, current
        assert current["fps_source"] == "declared"
        assert 100 < current["bitrate_kbps"] < 5000, current

        # 3. a viewer without the playback token gets no media; with it, the FLV stream
        flv = config["hls_url"].split("?", 1)[0]
        assert flv.endswith(f"/live/{event['playback_id']}.flv")
        status, head = await _flv_head(flv)
        assert status == 403
        assert not head.startswith(b"FLV"), head[:20]
        status, head = await _flv_head(f"{flv}?token={uuid.uuid4().hex}")
        assert not head.startswith(b"FLV")
        status, head = await _flv_head(config["hls_url"])
        assert status == 200
        assert head.startswith(b"FLV"), head[:20]

        # 4. stopping the event kicks the publisher through NMS's REST API
        stopped = await live.api.post(
            f"/api/events/{event['id']}/stop", headers=live.streamer.headers
        )
        assert stopped.json()["status"] == "ended"
        assert await _wait_exit(encoder, 15) is not None, "the encoder was not disconnected"

        # 5. and the ended event's key is refused
        again = await nginx_rtmp.publish(publish_url, seconds=5, log=live.logs / "ff2.log")
        assert await _wait_exit(again, 20) not in (None, 0)
    finally:
        await _kill(encoder)
    log = live.nms.output()
    assert config["ingest"]["stream_key"].split("=", 1)[1] not in log
    assert config["playback_token"] not in log


async def test_encoder_leaving_puts_the_event_in_reconnecting_at_once(live: Live):
    event, config = await _event(live)
    encoder = await nginx_rtmp.publish(config["ingest"]["publish_url"], log=live.logs / "ff.log")
    try:
        await _wait_status(live, event, "live", within=15)
    finally:
        await _kill(encoder)
    # NMS itself reports donePublish only after its 30 s resume grace; the wrapper reports the
    # connection closing, so the reconnect window starts now and then ends the event
    await _wait_status(live, event, "reconnecting", within=5)
    await _wait_status(live, event, "ended", within=RECONNECT_WINDOW + 5)
