"""The managed media server: start -> first playable segment, and delivery authorization cost.

    python -m bench.bench_media [--runs 3] [--seconds 6] [--connections 16]

Starts BigfootLive (uvicorn, one process, PostgreSQL + Redis, like bench_on_publish) and the
managed nginx-rtmp exactly as `bigfootlive serve` does (generated configuration, supervisor),
on loopback ports of its own. Two figures:

- `start_to_first_segment`: for `--runs` private events in turn, ffmpeg starts publishing
  (640x360, 30 fps, 1 s keyframes) to the ingest URL; measured are the seconds until the
  event is `live` and until the first segment listed by the playlist is served through nginx's
  origin (with the playback token, so through the authorization) as MPEG-TS.
- `authorize`: `GET /api/media/authorize` as nginx calls it (media-server credential, a private
  event's segment path and playback token in headers) against a bare GET route on the same
  server answering an empty 200, with wrk: requests/s, latency, and the ratio (target >= 0.5:
  the decision is on every uncached segment request).

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import socket
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Response

from bench import loadgen
from bigfootlive.app import create_app
from bigfootlive.authz.roles import Role
from bigfootlive.authz.subject import AccessClaims
from bigfootlive.composition import AppState
from bigfootlive.config import Settings
from bigfootlive.events import crud, lifecycle
from bigfootlive.events.schemas import EventCreate, Visibility
from bigfootlive.identity import accounts
from bigfootlive.kit.request import RequestMeta
from bigfootlive.migrations import upgrade_database
from bigfootlive.models import Event
from bigfootlive.serving import uvicorn_options
from bigfootlive.streaming.managed import credential
from bigfootlive.streaming.managed.nginx_conf import MediaLayout, find_nginx
from bigfootlive.streaming.managed.supervisor import NginxSupervisor
from bigfootlive.tenants import service as tenants
from bigfootlive.tenants.schemas import TenantSettings

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
META = RequestMeta(ip="127.0.0.1", user_agent="bench", request_id="bench")


def headers_script(path: str, headers: dict[str, str]) -> str:
    pairs = ", ".join(
        f"[{loadgen.lua_string(k)}] = {loadgen.lua_string(v)}" for k, v in headers.items()
    )
    return f"""
local headers = {{{pairs}}}
request = function()
  return wrk.format("GET", {loadgen.lua_string(path)}, headers)
end
""" + loadgen.plain_script()


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def seed(state: AppState, n: int) -> list[tuple[Event, str, str]]:
    """`n` private events, armed: (event, stream key, playback token)."""
    async with state.db.transaction() as session:
        tenant = await tenants.create_tenant(
            session, slug=f"bench-{uuid.uuid4().hex[:6]}", name="Bench",
            settings=TenantSettings(), email_domains=[],
        )  # fmt: skip
        user = await accounts.create_account(
            state, session, tenant=tenant, email="bench@example.com", display_name="Bench",
            role=Role.ADMIN, password=None, email_verified=True,
        )  # fmt: skip
    claims = AccessClaims(
        user_id=user.id, tenant_id=tenant.id, session_id=uuid.uuid4(), roles=("admin",),
        amr=("pwd",), auth_time=0, expires_at=0,
    )  # fmt: skip
    subject = loadgen.subject_of(user, tenant, claims)
    out: list[tuple[Event, str, str]] = []
    async with state.db.transaction() as session:
        for i in range(n):
            body = EventCreate(title=f"bench {i}", visibility=Visibility.PRIVATE)
            event, key = await crud.create_event(state, session, META, subject, body)
            await lifecycle.start_event(state, session, META, subject, event.id)
            token, _ = state.playback_tokens.issue(
                event_id=event.id, playback_id=event.playback_id, viewer_id=None
            )
            out.append((event, key, token))
    return out


async def _status(state: AppState, event_id: uuid.UUID) -> str:
    async with state.db.read_sessionmaker() as session:
        event = await session.get(Event, event_id, populate_existing=True)
        return "" if event is None else str(event.status)


async def first_segment(
    state: AppState, settings: Settings, event: Event, key: str, token: str, log: Path
) -> dict[str, float]:
    ingest = f"rtmp://127.0.0.1:{settings.rtmp_port}/ingest/{key}"
    playlist = f"{settings.cdn_base_url}/hls/{event.playback_id}.m3u8"
    args = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
        "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "30",
        "-pix_fmt", "yuv420p", "-b:v", "800k", "-c:a", "aac", "-b:a", "64k", "-f", "flv", ingest,
    ]  # fmt: skip
    started = time.monotonic()
    with log.open("ab") as handle:
        encoder = await asyncio.create_subprocess_exec(*args, stdout=handle, stderr=handle)
    live_s = segment_s = None
    try:
        async with httpx.AsyncClient(timeout=5) as cdn:
            while time.monotonic() - started < 60:
                if live_s is None and await _status(state, event.id) == "live":
                    live_s = time.monotonic() - started
                got = await cdn.get(playlist, params={"token": token})
                names = [ln for ln in got.text.splitlines() if ".ts" in ln]
                if got.status_code == 200 and names:
                    seg = await cdn.get(f"{settings.cdn_base_url}/hls/{names[0]}")
                    if seg.status_code == 200 and seg.content[:1] == b"\x47":  # MPEG-TS sync
                        segment_s = time.monotonic() - started
                        break
                await asyncio.sleep(0.05)
    finally:
        encoder.kill()
        await encoder.wait()
    if live_s is None or segment_s is None:
        raise RuntimeError(f"no segment within 60 s (ffmpeg log: {log})")
    return {"live_s": round(live_s, 3), "first_segment_s": round(segment_s, 3)}


async def main(runs: int, seconds: int, connections: int) -> dict[str, Any]:
    loadgen.wrk_binary()
    db_url = await loadgen.create_database()
    tmp = Path(tempfile.mkdtemp(prefix="bfl-bench-media-"))
    supervisor: NginxSupervisor | None = None
    try:
        await upgrade_database(db_url)
        api_port, rtmp_port, http_port = (loadgen.free_port() for _ in range(3))
        settings = Settings(
            node_env="test", database_url=db_url, redis_url=REDIS_URL,
            redis_key_prefix=f"bench:{uuid.uuid4().hex[:8]}:", log_level="WARNING",
            mail_outbox_dir=str(tmp / "outbox"), auto_migrate=False, port=api_port,
            rtmp_port=rtmp_port, media_http_port=http_port, media_server_mode="managed",
            media_runtime_dir=str(tmp / "nginx"), recordings_dir=str(tmp / "media"),
            cdn_base_url=f"http://127.0.0.1:{http_port}", container_manager_enabled=False,
            stream_lookup_cache_seconds=300,
        )  # fmt: skip
        app: FastAPI = create_app(settings)

        @app.get("/bench/bare")
        async def bare() -> Response:  # the reference peer: same server, no work
            return Response(b"", 200, media_type="text/plain")

        server = uvicorn.Server(
            uvicorn.Config(
                app, **uvicorn_options(host="127.0.0.1", port=api_port, log_level="critical")
            )
        )
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.05)
        nginx = find_nginx(settings)
        if nginx is None:
            raise SystemExit("nginx with libnginx-mod-rtmp is required (scripts/packages)")
        layout = dataclasses.replace(MediaLayout.from_settings(settings), error_log_to_stderr=True)
        supervisor = NginxSupervisor(layout, nginx)
        supervisor.start()
        while not _port_open(http_port):  # noqa: ASYNC110 - nginx has no readiness signal
            await asyncio.sleep(0.05)
        state: AppState = app.state.bigfoot
        seeded = await seed(state, runs)

        measured = []
        for event, key, token in seeded:
            measured.append(await first_segment(state, settings, event, key, token, tmp / "ff.log"))

        event, _, token = seeded[0]
        headers = {
            "X-API-Key": credential.credential(settings),
            "X-Original-URI": f"/hls/{event.playback_id}-3.ts?token={token}",
            "X-Playback-Token": token,
        }
        base = f"http://127.0.0.1:{api_port}"
        script = headers_script("/api/media/authorize", headers)
        bare_script = headers_script("/bench/bare", headers)
        await asyncio.to_thread(
            loadgen.run_wrk,
            f"{base}/api/media/authorize",
            script,
            seconds=1,
            connections=connections,
        )  # fmt: skip  (warm-up: connections, cache entries)
        authorize = await asyncio.to_thread(
            loadgen.run_wrk, f"{base}/api/media/authorize", script, seconds=seconds,
            connections=connections,
        )  # fmt: skip
        bare_run = await asyncio.to_thread(
            loadgen.run_wrk, f"{base}/bench/bare", bare_script, seconds=seconds,
            connections=connections,
        )  # fmt: skip
        supervisor.stop()
        supervisor = None
        server.should_exit = True
        await serving
    finally:
        if supervisor is not None:
            supervisor.stop()
        await loadgen.drop_database(db_url)
        shutil.rmtree(tmp, ignore_errors=True)

    firsts = [m["first_segment_s"] for m in measured]
    return {
        "benchmark": "managed media server: start -> first playable segment; authorization",
        "server": "uvicorn, 1 process, PostgreSQL + Redis; nginx-rtmp started by the supervisor",
        "cpus": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0],
        "start_to_first_segment": {
            "hls_fragment_s": layout.hls_fragment_seconds,
            "keyframe_interval_s": 1,
            "runs": measured,
            "median_first_segment_s": round(statistics.median(firsts), 3),
            "max_first_segment_s": max(firsts),
        },
        "authorize": {
            "load": f"wrk -t1 -c{connections}, {seconds} s each",
            "authorize": authorize.figures(),
            "bare": bare_run.figures(),
            "throughput_ratio": round(authorize.rps / bare_run.rps, 3) if bare_run.rps else None,
            "p99_ratio": round(authorize.p99_ms / max(bare_run.p99_ms, 1e-3), 2),
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--connections", type=int, default=16)
    ns = parser.parse_args()
    print(json.dumps(loadgen.run_served(main(ns.runs, ns.seconds, ns.connections)), indent=2))
