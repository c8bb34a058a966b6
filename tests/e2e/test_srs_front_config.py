"""The nginx that docs/streaming.md puts in front of SRS's HTTP server, run verbatim (its
```nginx block, with this test's addresses and key) in front of a stand-in for SRS's
http_server serving SRS's HLS layout (`live/<playback id>.m3u8`, `live/<playback id>-<n>.ts`).
SRS itself is not installed here: what is under test is the documented nginx and our answers."""

from __future__ import annotations

import asyncio
import functools
import http.server
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
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
from tests.fixtures.polling import until
from tests.fixtures.recorded import payload

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "streaming.md"


def documented_front() -> str:
    text = DOCS.read_text()
    section = text[text.index("**Delivery authorization with SRS.**") :]
    found = re.search(r"```nginx\n(.*?)```", section, re.S)
    assert found is not None, "the SRS front nginx block is gone from docs/streaming.md"
    return found.group(1)


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def ports() -> dict[str, int]:
    return {name: services.free_port() for name in ("api", "front", "srs")}


@pytest.fixture
def settings_overrides(ports: dict[str, int]) -> dict[str, Any]:
    return {
        "port": ports["api"],
        "media_server": "srs",
        "cdn_base_url": f"http://127.0.0.1:{ports['front']}",
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
    }


@pytest.fixture
def runtime() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="bfl-srs-front-"))
    os.chmod(base, 0o755)  # noqa: S103 - nginx's unprivileged workers read and write here
    yield base
    shutil.rmtree(base, ignore_errors=True)


class _SrsFiles(http.server.SimpleHTTPRequestHandler):
    extensions_map = {  # what SRS's http_server answers
        ".m3u8": "application/vnd.apple.mpegurl",
        ".ts": "video/MP2T",
        "": "application/octet-stream",
    }

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def srs_http(ports: dict[str, int], runtime: Path) -> Iterator[Path]:
    root = runtime / "html"
    (root / "live").mkdir(parents=True)
    handler = functools.partial(_SrsFiles, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", ports["srs"]), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root
    server.shutdown()
    server.server_close()


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Factory]]:
    services.require(_nginx_installed(), "nginx")
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            **uvicorn_options(host="127.0.0.1", port=settings.port, log_level="warning", ws="none"),
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started, within=20)
        base = f"http://127.0.0.1:{settings.port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            yield client, Factory(app.state.bigfoot, client)
    finally:
        server.should_exit = True
        await serving


def _nginx_installed() -> bool:
    return Path(nginx_rtmp.NGINX).exists()


def _start_nginx(conf: Path, runtime: Path) -> subprocess.Popen[bytes]:
    args = [nginx_rtmp.NGINX, "-p", str(runtime), "-c", str(conf)]
    checked = subprocess.run([*args, "-t"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    return subprocess.Popen(args, stderr=subprocess.DEVNULL)


def _stop(nginx: subprocess.Popen[bytes]) -> None:
    nginx.send_signal(signal.SIGQUIT)
    try:
        nginx.wait(timeout=5)
    except subprocess.TimeoutExpired:
        nginx.kill()
        nginx.wait()


def _nginx_conf(snippet: str, runtime: Path, ports: dict[str, int], key: str) -> str:
    for sub in ("logs", "tmp", "cache"):
        (runtime / sub).mkdir(exist_ok=True)
        os.chmod(runtime / sub, 0o777)  # noqa: S103
    http_block = (
        snippet.replace("bfk_...", key)
        .replace("http://api:3001", f"http://127.0.0.1:{ports['api']}")
        .replace("listen 8080;", f"listen 127.0.0.1:{ports['front']};")
        .replace("http://127.0.0.1:8081", f"http://127.0.0.1:{ports['srs']}")
        .replace("/var/cache/nginx/bfl", str(runtime / "cache"))
    )
    temp = "".join(
        f"    {kind}_temp_path {runtime}/tmp/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"daemon off;\npid {runtime}/nginx.pid;\nerror_log {runtime}/logs/error.log warn;\n"
        f"events {{ worker_connections 64; }}\n"
        f"http {{\n    access_log off;\n{temp}{http_block}}}\n"
    )


async def test_the_documented_srs_front_authorizes_every_file(
    api, settings: Settings, ports: dict[str, int], runtime: Path, srs_http: Path
):
    client, factory = api
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    streamer = await factory.user(tenant, role=Role.STREAMER)
    key = (await client.post("/api/api-keys", json={"name": "srs"}, headers=admin.headers)).json()
    events = {}
    for visibility in ("private", "public"):
        created = await client.post(
            "/api/events", json={"title": visibility, "visibility": visibility},
            headers=streamer.headers,
        )  # fmt: skip
        event = created.json()
        assert (
            await client.post(f"/api/events/{event['id']}/start", headers=streamer.headers)
        ).status_code == 200
        pb = event["playback_id"]
        (srs_http / "live" / f"{pb}.m3u8").write_text(
            f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n{pb}-0.ts\n#EXTINF:2.0,\n{pb}-1.ts\n"
        )
        for n in (0, 1):
            (srs_http / "live" / f"{pb}-{n}.ts").write_bytes(b"\x47" * 188 * 10)
        events[visibility] = event

    conf = runtime / "nginx.conf"
    conf.write_text(_nginx_conf(documented_front(), runtime, ports, key["key"]))
    nginx = _start_nginx(conf, runtime)
    try:
        await until(lambda: services.port_open("127.0.0.1", ports["front"]), within=10)
        private = events["private"]
        pb = private["playback_id"]
        stream = (
            await client.get(
                f"/api/streaming/events/{private['id']}/stream", headers=streamer.headers
            )
        ).json()
        token = stream["playback_token"]
        front = f"http://127.0.0.1:{ports['front']}"
        assert stream["hls_url"] == f"{front}/live/{pb}.m3u8?token={token}"
        other = (
            await client.get(
                f"/api/streaming/events/{events['public']['id']}/stream", headers=streamer.headers
            )
        ).json()
        async with httpx.AsyncClient(base_url=front, timeout=10) as cdn:
            # anonymous: neither the playlist nor a segment
            assert (await cdn.get(f"/live/{pb}.m3u8")).status_code == 401
            assert (await cdn.get(f"/live/{pb}-0.ts")).status_code == 401
            assert (await cdn.get(f"/live/{pb}.flv")).status_code == 401
            # the player's URL: the playlist, its segments carrying the token on, a cookie
            playlist = await cdn.get(stream["hls_url"])
            assert playlist.status_code == 200
            assert f"{pb}-0.ts?token={token}" in playlist.text
            assert f"bfl_playback_{pb}=" in playlist.headers["set-cookie"]
            segment = await cdn.get(f"/live/{pb}-0.ts", params={"token": token})
            assert segment.status_code == 200
            assert segment.content == b"\x47" * 188 * 10
        async with httpx.AsyncClient(base_url=front, timeout=10) as stranger:
            # a made-up token is refused
            wrong = await stranger.get(f"/live/{pb}-0.ts", params={"token": "x.y.z"})
            assert wrong.status_code == 403
            # the cookie the playlist set is enough for a player that keeps no query
            by_cookie = await stranger.get(
                f"/live/{pb}-1.ts", headers={"Cookie": f"bfl_playback_{pb}={token}"}
            )
            assert by_cookie.status_code == 200
            public = events["public"]["playback_id"]
            assert (await stranger.get(f"/live/{public}.m3u8")).status_code == 200
            assert (await stranger.get(f"/live/{public}-1.ts")).status_code == 200
            assert other["playback_token"] is None
            # SRS's hooks through the front carry the key in a header
            hook = await stranger.post(
                "/bfl-hooks/srs",
                content=payload(
                    "srs", "on_publish.json", client_id="c1", playback_id=pb,
                    stream_key=stream["ingest"]["stream_key"].split("=", 1)[1],
                ),
                headers={"content-type": "application/json"},
            )  # fmt: skip
            assert hook.status_code == 200, hook.text
            assert hook.text == "0"
    finally:
        _stop(nginx)
