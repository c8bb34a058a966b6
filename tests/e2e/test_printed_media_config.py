"""MEDIA_SERVER_MODE=external: the configuration `bigfootlive media-server config` prints runs
verbatim on an operator's own nginx (here: the test's, on loopback ports of its own)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from bigfootlive.app import create_app
from bigfootlive.authz.roles import Role
from bigfootlive.config import Settings
from bigfootlive.serving import uvicorn_options
from tests.fixtures import nginx_rtmp, services
from tests.fixtures.factories import Factory

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

BIN = Path(sys.executable).parent / "bigfootlive"


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def ports() -> dict[str, int]:
    return {name: services.free_port() for name in ("api", "rtmp", "http")}


@pytest.fixture
def settings_overrides(ports: dict[str, int], tmp_path: Path) -> dict[str, Any]:
    return {
        "port": ports["api"],
        "rtmp_port": ports["rtmp"],
        "media_http_port": ports["http"],
        "media_server_mode": "external",
        "media_runtime_dir": str(tmp_path / "nginx"),
        "recordings_dir": str(tmp_path / "media"),
        "cdn_base_url": f"http://127.0.0.1:{ports['http']}",
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
    }


def _printed_config(settings: Settings, tmp: Path) -> str:
    keep = ("PATH", "HOME", "LANG")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        JWT_SECRET=settings.jwt_secret.get_secret_value(),
        RTMP_PORT=str(settings.rtmp_port),
        MEDIA_HTTP_PORT=str(settings.media_http_port),
        MEDIA_RUNTIME_DIR=settings.media_runtime_dir,
        RECORDINGS_DIR=settings.recordings_dir,
    )
    done = subprocess.run(
        [str(BIN), "media-server", "config", "--api-url", f"http://127.0.0.1:{settings.port}"],
        env=env, cwd=tmp, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def _start_nginx(conf: Path, runtime: Path) -> subprocess.Popen[bytes]:
    args = [nginx_rtmp.NGINX, "-p", str(runtime), "-c", str(conf)]
    checked = subprocess.run([*args, "-t"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    return subprocess.Popen(args, stderr=subprocess.DEVNULL)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Factory]]:
    services.require(nginx_rtmp.available(), "nginx with libnginx-mod-rtmp and ffmpeg")
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            **uvicorn_options(host="127.0.0.1", port=settings.port, log_level="warning", ws="none"),
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.05)
        base = f"http://127.0.0.1:{settings.port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            yield client, Factory(app.state.bigfoot, client)
    finally:
        server.should_exit = True
        await serving


async def test_the_printed_configuration_runs_verbatim(api, settings: Settings, tmp_path: Path):
    client, factory = api
    text = _printed_config(settings, tmp_path)
    assert "X-API-Key" in text
    assert "api_key=" not in text
    runtime = Path(settings.media_runtime_dir)
    for sub in ("logs", "tmp", "cache", "hls"):  # what docs/streaming.md tells operators
        (runtime / sub).mkdir(parents=True, exist_ok=True)
    conf = tmp_path / "bigfootlive-nginx.conf"
    conf.write_text(text)  # verbatim
    nginx = _start_nginx(conf, runtime)
    encoder: asyncio.subprocess.Process | None = None
    try:
        await _until(lambda: services.port_open("127.0.0.1", settings.media_http_port), 10)
        tenant = await factory.tenant()
        streamer = await factory.user(tenant, role=Role.STREAMER)
        created = await client.post(
            "/api/events", json={"title": "Own fleet", "visibility": "private"},
            headers=streamer.headers,
        )  # fmt: skip
        event = created.json()
        started = await client.post(f"/api/events/{event['id']}/start", headers=streamer.headers)
        assert started.status_code == 200
        stream = (
            await client.get(
                f"/api/streaming/events/{event['id']}/stream", headers=streamer.headers
            )
        ).json()
        encoder = await nginx_rtmp.publish(
            stream["ingest"]["publish_url"], log=tmp_path / "ffmpeg.log"
        )
        playlist = Path(runtime / "hls" / f"{event['playback_id']}.m3u8")
        await _until(lambda: playlist.exists() and ".ts" in playlist.read_text(), 30)
        async with httpx.AsyncClient(timeout=10) as cdn:
            url = stream["hls_url"].split("?", 1)[0]
            assert (await cdn.get(url)).status_code == 401
            allowed = await cdn.get(url, params={"token": stream["playback_token"]})
            assert allowed.status_code == 200
            segment = next(ln for ln in allowed.text.splitlines() if ".ts" in ln)
            seg = await cdn.get(url.rsplit("/", 1)[0] + "/" + segment)  # carries the token
            assert seg.status_code == 200
            assert len(seg.content) > 1000
        status = (await client.get(f"/api/events/{event['id']}", headers=streamer.headers)).json()
        assert status["status"] == "live"
        error_log = (runtime / "logs" / "error.log").read_text()
        assert stream["ingest"]["stream_key"] not in error_log
    finally:
        if encoder is not None and encoder.returncode is None:
            encoder.kill()
            await encoder.wait()
        nginx.send_signal(signal.SIGQUIT)
        try:
            nginx.wait(10)
        except subprocess.TimeoutExpired:
            nginx.kill()
            nginx.wait()


async def _until(condition: Any, within: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)
