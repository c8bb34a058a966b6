"""on_publish decision latency and throughput on PostgreSQL + Redis, next to a bare endpoint.

    python -m bench.bench_on_publish [--events 3000] [--seconds 5] [--connections 16]

Starts BigfootLive (uvicorn, one process) on a fresh PostgreSQL database and a Redis key
prefix of its own, adds a bare route that returns a constant (in this script only), and
drives both with wrk (nginx-rtmp form bodies, API key in a header). Three runs:

- `first_publish`: every request is the first publish of a different armed event (the API
  key and key->event lookups come from the cache; one conditional UPDATE makes it live);
- `repeat_publish`: the same callbacks again (retries): answered from the cache alone;
- `bare`: POST to a route that returns "0".

Prints JSON figures and the ratios to the bare endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Response
from sqlalchemy import select

from bench import loadgen
from bench.summary import target
from bigfootlive.apikeys import service as apikeys
from bigfootlive.apikeys.schemas import ApiKeyCreate
from bigfootlive.app import create_app
from bigfootlive.authz.roles import Role
from bigfootlive.authz.subject import AccessClaims, AuthSubject
from bigfootlive.composition import AppState
from bigfootlive.config import Settings
from bigfootlive.events import crud, lifecycle
from bigfootlive.events.schemas import EventCreate
from bigfootlive.identity import accounts
from bigfootlive.kit.request import RequestMeta
from bigfootlive.migrations import upgrade_database
from bigfootlive.models import Event
from bigfootlive.serving import uvicorn_options
from bigfootlive.tenants import service as tenants
from bigfootlive.tenants.schemas import TenantSettings

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
LUA = Path(__file__).with_name("on_publish.lua")
META = RequestMeta(ip="127.0.0.1", user_agent="bench", request_id="bench")


async def seed(state: AppState, n_events: int) -> tuple[str, list[tuple[uuid.UUID, str]]]:
    """An armed event per request of the first pass, and an API key for the callbacks."""
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
    subject = AuthSubject(user=user, claims=claims, tenant_slug=tenant.slug)
    keys: list[tuple[uuid.UUID, str]] = []
    batch = 250
    for start in range(0, n_events, batch):
        async with state.db.transaction() as session:
            for i in range(start, min(start + batch, n_events)):
                event, key = await crud.create_event(
                    state, session, META, subject, EventCreate(title=f"bench {i}")
                )
                await lifecycle.start_event(state, session, META, subject, event.id)
                keys.append((event.id, key))
    async with state.db.transaction() as session:
        _, secret = await apikeys.create_key(session, META, subject, ApiKeyCreate(name="bench"))
    return secret, keys


async def drop_redis_keys(*patterns: str) -> None:
    """The run's cache entries and its job queues."""
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        for pattern in patterns:
            batch = [key async for key in client.scan_iter(match=pattern, count=1000)]
            for start in range(0, len(batch), 1000):
                await client.delete(*batch[start : start + 1000])
    finally:
        await client.aclose()


async def wrk(url: str, args: list[str], *, seconds: int, connections: int, threads: int) -> Any:
    cmd = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
        "-s", str(LUA), url, "--", *args,
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    line = next((ln for ln in out.decode().splitlines() if ln.startswith("{")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed: {out.decode()} {err.decode()}")
    raw = json.loads(line)
    duration = raw["duration_us"] / 1e6
    return {
        "requests": raw["requests"],
        "rps": round(raw["requests"] / duration, 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "mean_ms": round(raw["mean_us"] / 1000, 3),
        "errors": raw["status_errors"] + raw["socket_errors"],
    }


async def main(n_events: int, seconds: int, connections: int, threads: int) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is required (apt-get install wrk)")
    load_before = round(os.getloadavg()[0], 2)
    db_url = await loadgen.create_database()
    tmp = Path(tempfile.mkdtemp(prefix="bfl-bench-"))
    key_prefix, queue_prefix = f"bench:{uuid.uuid4().hex[:8]}:", f"bench{uuid.uuid4().hex[:8]}"
    try:
        await upgrade_database(db_url)
        port = loadgen.free_port()
        settings = Settings(
            node_env="test", database_url=db_url, redis_url=REDIS_URL,
            redis_key_prefix=key_prefix, log_level="WARNING",
            mail_outbox_dir=str(tmp / "outbox"), auto_migrate=False,
            database_pool_size=20, stream_lookup_cache_seconds=300,
            # thousands of armed events; their containers are not what this measures
            container_manager_enabled=False, container_max_per_tenant=1_000_000,
            container_max_per_node=1_000_000,
            # the jobs (followers' notifications) go to the Redis broker; no worker here
            jobs_queue_prefix=queue_prefix,
        )  # fmt: skip
        app: FastAPI = create_app(settings)

        @app.post("/bench/bare")
        async def bare() -> Response:  # the reference peer: same server, no work
            return Response(b"0", media_type="text/plain")

        server = uvicorn.Server(
            uvicorn.Config(
                app, **uvicorn_options(host="127.0.0.1", port=port, log_level="critical")
            )
        )
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.05)
        state: AppState = app.state.bigfoot
        api_key, keys = await seed(state, n_events)
        keys_file = tmp / "keys.txt"
        keys_file.write_text("".join(f"{key} c{i}\n" for i, (_, key) in enumerate(keys)))
        base = f"http://127.0.0.1:{port}"
        hook = f"{base}/api/streaming/hooks/nginx-rtmp"
        opts = {"connections": connections, "threads": threads}
        # warm up connections and code paths on the bare route
        await wrk(f"{base}/bench/bare", ["-", str(threads), api_key, "0"], seconds=1, **opts)
        first = await wrk(
            hook, [str(keys_file), str(threads), api_key, "1"], seconds=seconds * 4, **opts
        )
        # The repeated publishes go to the events the first pass made live, and to no other
        # (a key the first pass did not reach would be a first publish again).
        async with state.db.transaction() as session:
            live = set(
                (await session.execute(select(Event.id).where(Event.status == "live"))).scalars()
            )
        live_file = tmp / "live.txt"
        live_file.write_text(
            "".join(f"{key} c{i}\n" for i, (id_, key) in enumerate(keys) if id_ in live)
        )
        repeat = await wrk(
            hook, [str(live_file), str(threads), api_key, "0"], seconds=seconds, **opts
        )
        bare_run = await wrk(
            f"{base}/bench/bare", ["-", str(threads), api_key, "0"], seconds=seconds, **opts
        )
        server.should_exit = True
        await serving
    finally:
        await loadgen.drop_database(db_url)
        await drop_redis_keys(f"{key_prefix}*", f"*{queue_prefix}*")
        shutil.rmtree(tmp, ignore_errors=True)

    def ratios(run: dict[str, Any]) -> dict[str, float]:
        return {
            "rps_vs_bare": round(run["rps"] / bare_run["rps"], 3),
            "p50_vs_bare": round(run["p50_ms"] / max(bare_run["p50_ms"], 1e-3), 2),
            "p99_vs_bare": round(run["p99_ms"] / max(bare_run["p99_ms"], 1e-3), 2),
        }

    first_ratio = round(first["rps"] / bare_run["rps"], 3)
    repeat_ratio = round(repeat["rps"] / bare_run["rps"], 3)
    return {
        "benchmark": "on_publish decision (nginx-rtmp callback) vs bare endpoint",
        "load_average_1m_before": load_before,
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "targets": [
            target(
                "media-server on_publish, first publish, vs bare",
                first_ratio,
                0.5,
                detail=f"{first['rps']:,.1f} vs {bare_run['rps']:,.1f} req/s",
            ),
            target(
                "media-server on_publish, repeated publish, vs bare",
                repeat_ratio,
                0.8,
                detail=f"{repeat['rps']:,.1f} vs {bare_run['rps']:,.1f} req/s",
            ),
        ],
        "live_after_first_pass": len(live),
        "backend": "postgresql+redis",
        "server": "uvicorn, 1 process, same server for all runs",
        "load": f"wrk -t{threads} -c{connections}",
        "events": n_events,
        "first_publish": {**first, **ratios(first)},
        "repeat_publish": {**repeat, **ratios(repeat)},
        "bare": bare_run,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    ns = parser.parse_args()
    print(
        json.dumps(asyncio.run(main(ns.events, ns.seconds, ns.connections, ns.threads)), indent=2)
    )
