"""Go live with no hand-written configuration: `bigfootlive serve` runs nginx-rtmp itself.

A real `bigfootlive serve` (SQLite, as `make run`) on loopback ports of its own, the real
nginx + libnginx-mod-rtmp it starts, ffmpeg encoders; the only set-up is the environment and two
CLI commands. Delivery authorization is asserted where the video is served: nginx's origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures import nginx_rtmp, services
from tests.fixtures.cli import run_cli
from tests.fixtures.polling import until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

BIN = Path(sys.executable).parent / "bigfootlive"
PASSWORD = "plausible-tundra-velvet-42"
JWT_SECRET = "managed-media-test-" + "q" * 50


@dataclass
class Managed:
    api: httpx.AsyncClient
    cdn: httpx.AsyncClient
    headers: dict[str, str]
    runtime: Path
    log: Path
    tmp: Path
    server: subprocess.Popen[bytes]
    rtmp_port: int
    http_port: int

    def nginx_pid(self) -> int | None:
        try:
            return int((self.runtime / "nginx.pid").read_text().strip())
        except (OSError, ValueError):
            return None


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    drop = ("DATABASE_", "REDIS_", "CDN_", "NGINX_", "MEDIA_", "RTMP_", "RECORDINGS_", "BROKER_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        NODE_ENV="development",
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp}/bigfootlive.db",
        MAIL_OUTBOX_DIR=str(tmp / "outbox"),
        JWT_SECRET=JWT_SECRET,
        ARGON2_TIME_COST="1",
        ARGON2_MEMORY_KIB="1024",
        LOG_LEVEL="INFO",
        **extra,
    )
    return env


def _serve(env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(BIN), "serve"], env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT
        )


def _alive(pid: int | None) -> bool:
    return pid is not None and Path(f"/proc/{pid}").exists()


@contextlib.asynccontextmanager
async def managed_server(
    tmp_path: Path, *, api_timeout: float = 10, **extra_env: str
) -> AsyncIterator[Managed]:
    """`bigfootlive serve` with its managed nginx-rtmp on ports of its own, tenant `acme` and
    the streamer `sam` signed in; `extra_env`: more settings of the server."""
    services.require(nginx_rtmp.available(), "nginx with libnginx-mod-rtmp and ffmpeg")
    api_port, rtmp_port, http_port = (services.free_port() for _ in range(3))
    env = _env(
        tmp_path,
        PORT=str(api_port),
        RTMP_PORT=str(rtmp_port),
        MEDIA_HTTP_PORT=str(http_port),
        MEDIA_RUNTIME_DIR=str(tmp_path / "media-server"),
        RECORDINGS_DIR=str(tmp_path / "media"),
        **extra_env,
    )
    # The two commands run in this process (tests/fixtures/cli.py); test_cli runs them for real.
    tenant = ["tenant", "create", "--slug", "acme", "--name", "Acme"]
    await asyncio.to_thread(run_cli, tenant, env, cwd=tmp_path)
    user = ["user", "create", "--tenant", "acme", "--email", "sam@acme.com", "--name", "Sam",
            "--role", "streamer", "--password-stdin"]  # fmt: skip
    await asyncio.to_thread(run_cli, user, env, cwd=tmp_path, stdin=PASSWORD + "\n")
    log = tmp_path / "serve.log"
    server = _serve(env, tmp_path, log)
    base = f"http://127.0.0.1:{api_port}"
    try:
        async with (
            httpx.AsyncClient(base_url=base, timeout=api_timeout) as api,
            httpx.AsyncClient(timeout=10) as cdn,
        ):
            ready: dict[str, Any] = {}

            async def is_ready() -> bool:
                nonlocal ready
                with contextlib.suppress(httpx.TransportError):
                    answer = await api.get("/ready")
                    ready = answer.json()
                    return answer.status_code == 200
                return False

            await _until_async(is_ready, 40, lambda: log.read_text())
            assert ready["checks"]["media_server"] == "ok", ready
            assert ready["media_server"]["mode"] == "managed"
            login = await api.post(
                "/api/auth/login",
                json={"tenant": "acme", "email": "sam@acme.com", "password": PASSWORD},
            )
            assert login.status_code == 200, login.text
            yield Managed(
                api=api,
                cdn=cdn,
                headers={"Authorization": f"Bearer {login.json()['access_token']}"},
                runtime=tmp_path / "media-server",
                log=log,
                tmp=tmp_path,
                server=server,
                rtmp_port=rtmp_port,
                http_port=http_port,
            )
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@pytest.fixture
async def managed(tmp_path: Path) -> AsyncIterator[Managed]:
    async with managed_server(tmp_path) as m:
        yield m


async def _until_async(check: Any, within: float, why: Any = None) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met in time{': ' + why() if why else ''}")
        await asyncio.sleep(0.2)


async def _publish(url: str, log: Path) -> asyncio.subprocess.Process:
    """A small synthetic stream (320x180, 15 fps, 1 s keyframes): three of them at once stay
    light on a shared machine."""
    args = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
        "-f", "lavfi", "-i", "testsrc=size=320x180:rate=15",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "15",
        "-pix_fmt", "yuv420p", "-b:v", "300k", "-c:a", "aac", "-b:a", "48k", "-f", "flv", url,
    ]  # fmt: skip
    with log.open("ab") as handle:
        return await asyncio.create_subprocess_exec(*args, stdout=handle, stderr=handle)


async def _event(m: Managed, visibility: str) -> dict[str, Any]:
    created = await m.api.post(
        "/api/events", json={"title": visibility, "visibility": visibility}, headers=m.headers
    )
    assert created.status_code == 201, created.text
    event = created.json()
    started = await m.api.post(f"/api/events/{event['id']}/start", headers=m.headers)
    assert started.status_code == 200, started.text
    stream = await m.api.get(f"/api/streaming/events/{event['id']}/stream", headers=m.headers)
    assert stream.status_code == 200, stream.text
    return {**event, "stream": stream.json()}


def _bare(url: str) -> str:
    return url.split("?", 1)[0]


async def test_go_live_through_the_managed_server_and_delivery_is_authorized(managed: Managed):
    m = managed
    events = {v: await _event(m, v) for v in ("public", "tenant", "private")}
    origin = f"http://127.0.0.1:{m.http_port}"
    for event in events.values():
        # CDN_BASE_URL defaults to the managed origin; the ingest is its RTMP port
        assert event["stream"]["hls_url"].startswith(f"{origin}/hls/{event['playback_id']}.m3u8")
        assert event["stream"]["ingest"]["publish_url"].startswith(
            f"rtmp://127.0.0.1:{m.rtmp_port}/ingest/"
        )
    encoders = [
        await _publish(e["stream"]["ingest"]["publish_url"], m.tmp / f"ff-{v}.log")
        for v, e in events.items()
    ]
    try:
        for event in events.values():

            async def live(event: dict[str, Any] = event) -> bool:
                got = await m.api.get(f"/api/events/{event['id']}", headers=m.headers)
                return bool(got.json()["status"] == "live")

            await _until_async(live, 20, lambda: m.log.read_text()[-2000:])
        tokens = {v: e["stream"]["playback_token"] for v, e in events.items()}
        assert tokens["public"] is None
        assert tokens["tenant"]
        assert tokens["private"]

        # the first segment appears (fetched through the origin, with the token where needed)
        playlists: dict[str, str] = {}
        for v, event in events.items():

            async def has_segment(v: str = v, event: dict[str, Any] = event) -> bool:
                got = await m.cdn.get(event["stream"]["hls_url"])
                playlists[v] = got.text
                return got.status_code == 200 and ".ts" in got.text

            await _until_async(has_segment, 30)

        for v, event in events.items():
            playlist_url = _bare(event["stream"]["hls_url"])
            segment = next(ln for ln in playlists[v].splitlines() if ".ts" in ln)
            segment_url = f"{origin}/hls/{_bare(segment)}"
            m.cdn.cookies.clear()
            anonymous = [await m.cdn.get(playlist_url), await m.cdn.get(segment_url)]
            if v == "public":
                assert [r.status_code for r in anonymous] == [200, 200]
                assert len(anonymous[1].content) > 1000
                continue
            # anonymous: refused, for the playlist and for the segment
            assert [r.status_code for r in anonymous] == [401, 401], v
            assert "#EXTM3U" not in anonymous[0].text
            # another event's token: refused
            other = tokens["private" if v == "tenant" else "tenant"]
            wrong = await m.cdn.get(playlist_url, params={"token": other})
            assert wrong.status_code == 403, v
            token = tokens[v]
            # the token as a query parameter: the playlist, and its segment URIs carry it on
            by_query = await m.cdn.get(playlist_url, params={"token": token})
            assert by_query.status_code == 200
            assert "#EXTM3U" in by_query.text
            assert f".ts?token={token}" in by_query.text
            cookie_name = f"bfl_playback_{event['playback_id']}"
            assert by_query.cookies.get(cookie_name) == token
            seg = await m.cdn.get(segment_url, params={"token": token})
            assert seg.status_code == 200
            assert len(seg.content) > 1000
            assert seg.headers["content-type"] == "video/mp2t"
            # the token as a cookie
            m.cdn.cookies.clear()
            jar = {"Cookie": f"other=1; {cookie_name}={token}"}
            by_cookie = [
                await m.cdn.get(playlist_url, headers=jar),
                await m.cdn.get(segment_url, headers=jar),
            ]
            assert [r.status_code for r in by_cookie] == [200, 200], v
            assert "#EXTM3U" in by_cookie[0].text

        # the ABR ladder and the VOD of the same events are behind the same rule (files laid out
        # as the transcoder and the VOD publisher write them under RECORDINGS_DIR)
        await _ladder_and_vod_are_authorized(m, events, tokens, origin)

        # a player that only knows the tokenized URL plays it (ffprobe follows the playlist)
        probe = await asyncio.create_subprocess_exec(
            "ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height",
            "-of", "csv=p=0", events["private"]["stream"]["hls_url"],
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(probe.communicate(), 30)
        assert "h264,320,180" in out.decode(), err.decode()
    finally:
        for encoder in encoders:
            if encoder.returncode is None:
                encoder.kill()
                await encoder.wait()

    # nothing secret in any log: stream keys, playback tokens, the media-server credential
    logs = m.log.read_text() + "".join(
        p.read_text(errors="replace") for p in (m.runtime / "logs").iterdir()
    )
    conf = (m.runtime / "nginx.conf").read_text()
    credential = conf.split('X-API-Key "', 1)[1].split('"', 1)[0]
    assert credential.startswith("bfm_")
    secrets = [credential, *(t for t in tokens.values() if t)]
    secrets += [e["stream"]["ingest"]["stream_key"] for e in events.values()]
    for secret in secrets:
        assert secret not in logs
    assert (m.runtime / "nginx.conf").stat().st_mode & 0o077 == 0


def _write_media_tree(root: Path, files: dict[str, bytes]) -> None:
    for name, body in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)


async def _ladder_and_vod_are_authorized(
    m: Managed, events: dict[str, dict[str, Any]], tokens: dict[str, str | None], origin: str
) -> None:
    master = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\n720p/index.m3u8\n"
    media = b"#EXTM3U\n#EXTINF:2.0,\nseg_00001.ts\n#EXT-X-ENDLIST\n"
    for v, event in events.items():
        pb, ev = event["playback_id"], event["id"]
        _write_media_tree(
            m.tmp / "media",
            {f"live/{pb}/master.m3u8": master, f"live/{pb}/720p/index.m3u8": media,
             f"live/{pb}/720p/seg_00001.ts": b"\x47" * 1880,
             f"vod/{ev}/master.m3u8": master, f"vod/{ev}/720p/index.m3u8": media,
             f"vod/{ev}/720p/seg_00001.ts": b"\x47" * 1880},
        )  # fmt: skip
        urls = [
            f"{origin}/{tree}/{name}"
            for tree in (f"live/{pb}", f"vod/{ev}")
            for name in ("master.m3u8", "720p/seg_00001.ts")
        ]
        m.cdn.cookies.clear()
        anonymous = [(await m.cdn.get(url)).status_code for url in urls]
        if v == "public":
            assert anonymous == [200, 200, 200, 200]
            continue
        assert anonymous == [401, 401, 401, 401], v
        token = tokens[v]
        assert token is not None
        allowed = [await m.cdn.get(url, params={"token": token}) for url in urls]
        assert [r.status_code for r in allowed] == [200, 200, 200, 200], v
        # the master playlist's variant URIs carry the token on
        assert f"720p/index.m3u8?token={token}" in allowed[0].text
        m.cdn.cookies.clear()
        cookie = {"Cookie": f"bfl_playback_{pb}={token}"}
        by_cookie = [(await m.cdn.get(url, headers=cookie)).status_code for url in urls]
        assert by_cookie == [200, 200, 200, 200], v


async def test_nginx_is_restarted_after_a_crash_and_stopped_with_the_server(managed: Managed):
    m = managed
    first = m.nginx_pid()
    assert first is not None
    os.kill(first, signal.SIGKILL)  # nginx, started by this test's server: a crash

    async def restarted() -> bool:
        pid = m.nginx_pid()
        if pid == first or not _alive(pid):
            return False
        with contextlib.suppress(httpx.TransportError):
            return (await m.api.get("/ready")).status_code == 200
        return False

    await _until_async(restarted, 20, lambda: m.log.read_text()[-2000:])
    second = m.nginx_pid()
    assert second is not None
    assert "media_server_exited" in m.log.read_text()

    m.server.send_signal(signal.SIGTERM)
    m.server.wait(30)
    await until(lambda: not _alive(second), within=10)
    assert not services.port_open("127.0.0.1", m.rtmp_port)
    assert not services.port_open("127.0.0.1", m.http_port)


async def test_a_low_latency_event_plays_one_second_segments_from_its_container(
    managed: Managed,
):
    """nginx-rtmp's own HLS has one fragment length for every stream: a `low` event's
    container packages the ingest (a copy, no re-encode) in 1 s segments, and the playback
    info points players at that playlist, behind the same delivery rule."""
    m = managed
    created = await m.api.post(
        "/api/events",
        json={"title": "Fast", "visibility": "tenant", "latency_mode": "low"},
        headers=m.headers,
    )
    assert created.status_code == 201, created.text
    event = created.json()
    started = await m.api.post(f"/api/events/{event['id']}/start", headers=m.headers)
    assert started.status_code == 200, started.text
    stream = (
        await m.api.get(f"/api/streaming/events/{event['id']}/stream", headers=m.headers)
    ).json()
    origin = f"http://127.0.0.1:{m.http_port}"
    master = f"{origin}/live/{event['playback_id']}/master.m3u8"
    assert _bare(stream["hls_url"]) == master
    assert stream["player"]["hls_js"]["lowLatencyMode"] is True
    token = stream["playback_token"]
    encoder = await _publish(stream["ingest"]["publish_url"], m.tmp / "ff-low.log")
    media = f"{origin}/live/{event['playback_id']}/source/index.m3u8"
    playlist = ""
    try:

        async def three_segments() -> bool:
            nonlocal playlist
            got = await m.cdn.get(media, params={"token": token})
            playlist = got.text if got.status_code == 200 else ""
            return playlist.count("#EXTINF") >= 3

        await _until_async(three_segments, 40, lambda: m.log.read_text()[-2000:])
        durations = [
            float(line.split(":", 1)[1].rstrip(","))
            for line in playlist.splitlines()
            if line.startswith("#EXTINF")
        ]
        # cut at the encoder's 1 s keyframes (the normal events' HLS is cut at 2 s)
        assert max(durations) <= 1.2, playlist
        m.cdn.cookies.clear()
        assert (await m.cdn.get(master)).status_code == 401  # tenant-only: anonymous refused
        probe = await asyncio.create_subprocess_exec(
            "ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height",
            "-of", "csv=p=0", stream["hls_url"],
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(probe.communicate(), 30)
        assert "h264,320,180" in out.decode(), err.decode()
    finally:
        if encoder.returncode is None:
            encoder.kill()
            await encoder.wait()
