"""on_publish decision latency and throughput on PostgreSQL + Redis, next to a bare endpoint.

    python -m bench.bench_on_publish [--events 4000] [--seconds 8] [--rounds 4] [--connections 16]

Starts BigfootLive (uvicorn, one process) on a fresh PostgreSQL database, connected as the
application role (row-level security applies, as in production), and a Redis key prefix of
its own; adds a bare route that returns a constant (in this script only), and drives both
with wrk (nginx-rtmp form bodies, API key in a header):

- `first_publish`: every request is the first publish of a different armed event (the API
  key and key->event lookups come from the cache; one conditional UPDATE makes it live);
  round n publishes the n-th quarter (with 4 rounds) of the events, once each;
- `repeat_publish`: the same callbacks again (retries): answered from the cache alone;
- `bare`: POST to a route that returns "0".

Each side is measured in `--rounds` short runs alternating with the bare route (ours, bare,
bare, ours, ...) so that load from elsewhere on a shared machine falls on both alike; a run's
rate is each wrk thread's responses over its own active time (a first-publish run stops when
its events are used up). Prints one JSON document on stdout and nothing else (the server's
log lines go to stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Response
from sqlalchemy import select

from bench import loadgen
from bench.pgcpu import backends_cpu_s
from bench.summary import target
from bigfootlive.apikeys import service as apikeys
from bigfootlive.apikeys.schemas import ApiKeyCreate
from bigfootlive.app import create_app
from bigfootlive.authz.roles import Role
from bigfootlive.authz.scoping import platform_scope
from bigfootlive.authz.subject import AccessClaims
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
    subject = loadgen.subject_of(user, tenant, claims)
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


# The server's PostgreSQL application name (its backends' CPU is counted per run), set by main.
_PG_APP: list[str] = []


async def postgres_cpu() -> dict[int, float]:
    """CPU seconds (user + system, /proc) of each PostgreSQL backend of the server."""
    if not _PG_APP:
        return {}
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(loadgen.PG_ADMIN_URL)
    try:
        pids = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1", _PG_APP[0]
        )
    finally:
        await conn.close()
    return {pid: backends_cpu_s([pid]) for (pid,) in pids}


async def wrk(
    url: str, args: list[str], *, seconds: float, connections: int, threads: int
) -> dict[str, Any]:
    cmd = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
        "--timeout", "5s", "-s", str(LUA), url, "--", *args,
    ]  # fmt: skip
    pg_before = await postgres_cpu()
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    cpu = time.process_time()  # the server runs in this process; wrk in its own
    out, err = await proc.communicate()
    cpu = time.process_time() - cpu
    pg_after = await postgres_cpu()  # a backend opened meanwhile counts from zero
    pg = sum(pg_after.values()) - sum(v for k, v in pg_before.items() if k in pg_after)
    line = next((ln for ln in out.decode().splitlines() if ln.startswith("{")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed: {out.decode()} {err.decode()}")
    raw = json.loads(line)
    return {
        "requests": raw["requests"],
        "rps": raw["active_rps"],
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "mean_ms": round(raw["mean_us"] / 1000, 3),
        "errors": raw["status_errors"] + raw["socket_errors"],
        "server_cpu_s": cpu,
        "postgres_cpu_s": pg,
    }


def merged(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs of one side as one: total requests, mean rate, median latencies."""
    return {
        "requests": sum(r["requests"] for r in runs),
        "rps": round(statistics.mean(r["rps"] for r in runs), 1),
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "mean_ms": round(statistics.mean(r["mean_ms"] for r in runs), 3),
        "errors": sum(r["errors"] for r in runs),
        # the server's CPU (this process: user + system) per response, in microseconds
        "server_cpu_us_per_request": round(
            1e6 * sum(r["server_cpu_s"] for r in runs) / max(sum(r["requests"] for r in runs), 1),
            1,
        ),
        # the CPU of the server's PostgreSQL backends per response (same cores), microseconds
        "postgres_cpu_us_per_request": round(
            1e6 * sum(r["postgres_cpu_s"] for r in runs) / max(sum(r["requests"] for r in runs), 1),
            1,
        ),
    }


async def alternate(
    ours: list[tuple[str, list[str], float]], bare: tuple[str, list[str], float], **opts: Any
) -> dict[str, Any]:
    """Round n runs `ours[n]` and the bare route, in the order ours, bare, then bare, ours."""
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "bare": []}
    ratios, loads = [], []
    for n, run in enumerate(ours):
        order = [("ours", run), ("bare", bare)]
        for name, (url, args, seconds) in order if n % 2 == 0 else order[::-1]:
            loads.append(os.getloadavg()[0])
            runs[name].append(await wrk(url, args, seconds=seconds, **opts))
        ratios.append(round(runs["ours"][-1]["rps"] / max(runs["bare"][-1]["rps"], 1e-9), 3))
    mine, theirs = merged(runs["ours"]), merged(runs["bare"])
    return {
        "bigfootlive": mine,
        "bare": theirs,
        "throughput_ratio": round(mine["rps"] / max(theirs["rps"], 1e-9), 3),
        # bare / ours: the throughput ratio the server's CPU alone would allow (PostgreSQL's
        # and Redis's not counted); moves much less than requests/s on a busy machine
        "cpu_ratio": round(
            theirs["server_cpu_us_per_request"] / max(mine["server_cpu_us_per_request"], 1e-9), 3
        ),
        "round_throughput_ratios": ratios,
        "p50_ratio": round(mine["p50_ms"] / max(theirs["p50_ms"], 1e-3), 2),
        "p99_ratio": round(mine["p99_ms"] / max(theirs["p99_ms"], 1e-3), 2),
        "load_average_1m": round(statistics.mean(loads), 2),
    }


def settings_for(
    database_url: str, key_prefix: str, queue_prefix: str, tmp: Path, **extra: Any
) -> Settings:
    return Settings(
        node_env="test", database_url=database_url, redis_url=REDIS_URL,
        redis_key_prefix=key_prefix, log_level="WARNING",
        mail_outbox_dir=str(tmp / "outbox"), auto_migrate=False,
        database_pool_size=20, stream_lookup_cache_seconds=300,
        # thousands of armed events; their containers are not what this measures
        container_manager_enabled=False, container_max_per_tenant=1_000_000,
        container_max_per_node=1_000_000,
        # the jobs (followers' notifications) go to the Redis broker; no worker here
        jobs_queue_prefix=queue_prefix, **extra,
    )  # fmt: skip


async def main(
    n_events: int, seconds: float, rounds: int, connections: int, threads: int
) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is required (apt-get install wrk)")
    load_before = round(os.getloadavg()[0], 2)
    db_url = await loadgen.create_database()
    tmp = Path(tempfile.mkdtemp(prefix="bfl-bench-"))
    key_prefix, queue_prefix = f"bench:{uuid.uuid4().hex[:8]}:", f"bench{uuid.uuid4().hex[:8]}"
    try:
        await upgrade_database(db_url)
        # Seeded as the tables' owner; the server runs as the application role.
        owner = AppState.build(settings_for(db_url, key_prefix, queue_prefix, tmp))
        try:
            api_key, keys = await seed(owner, n_events)
        finally:
            await owner.close()
        app_url = await loadgen.app_role_url(db_url)
        _PG_APP[:] = [f"bflbench{uuid.uuid4().hex[:8]}"]
        app: FastAPI = create_app(
            settings_for(
                app_url, key_prefix, queue_prefix, tmp, database_migration_url=db_url,
                database_application_name=_PG_APP[0],
            )
        )  # fmt: skip

        @app.post("/bench/bare")
        async def bare() -> Response:  # the reference peer: same server, no work
            return Response(b"0", media_type="text/plain")

        port = loadgen.free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                app, **uvicorn_options(host="127.0.0.1", port=port, log_level="critical")
            )
        )
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.05)
        state: AppState = app.state.bigfoot
        base = f"http://127.0.0.1:{port}"
        hook = f"{base}/api/streaming/hooks/nginx-rtmp"
        opts = {"connections": connections, "threads": threads}
        per_round = seconds / rounds
        bare_run = (f"{base}/bench/bare", ["-", str(threads), api_key, "0"], per_round)
        # warm up connections and code paths on the bare route
        await wrk(*bare_run[:2], seconds=1, **opts)
        slices = []
        for n in range(rounds):
            path = tmp / f"first{n}.txt"
            path.write_text(
                "".join(f"{key} c{i}\n" for i, (_, key) in enumerate(keys) if i % rounds == n)
            )
            # a cap, not the length: the run stops when its events are used up
            slices.append((hook, [str(path), str(threads), api_key, "1"], per_round * 4))
        first = await alternate(slices, bare_run, **opts)
        # The repeated publishes go to the events the first pass made live, and to no other
        # (a key the first pass did not reach would be a first publish again).
        async with state.db.transaction() as session:
            with platform_scope("bench: the events made live"):
                stmt = select(Event.id).where(Event.status == "live")
                live = set((await session.execute(stmt)).scalars())
        live_file = tmp / "live.txt"
        live_file.write_text(
            "".join(f"{key} c{i}\n" for i, (id_, key) in enumerate(keys) if id_ in live)
        )
        repeat_run = (hook, [str(live_file), str(threads), api_key, "0"], per_round)
        repeat = await alternate([repeat_run] * rounds, bare_run, **opts)
        server.should_exit = True
        await serving
    finally:
        await loadgen.drop_database(db_url)
        await drop_redis_keys(f"{key_prefix}*", f"*{queue_prefix}*")
        shutil.rmtree(tmp, ignore_errors=True)

    return {
        "benchmark": "on_publish decision (nginx-rtmp callback) vs bare endpoint",
        "load_average_1m_before": load_before,
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "targets": [
            target(
                f"media-server on_publish, {what} publish, vs bare",
                pair["throughput_ratio"],
                goal,
                load_average=pair["load_average_1m"],
                detail=f"{pair['bigfootlive']['rps']:,.1f} vs {pair['bare']['rps']:,.1f} req/s",
            )
            for what, pair, goal in (("first", first, 0.5), ("repeated", repeat, 0.8))
        ],
        "live_after_first_pass": len(live),
        "backend": "postgresql+redis (application role: row-level security applies)",
        "server": "uvicorn, 1 process, same server for all runs",
        "load": f"wrk -t{threads} -c{connections}, {rounds} alternating rounds a side",
        "events": n_events,
        "first_publish": first,
        "repeat_publish": repeat,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--seconds", type=float, default=8, help="a side, over all rounds")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    ns = parser.parse_args()
    # Nothing but the JSON on stdout: the server's log lines (configured while this runs) go
    # to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        result = loadgen.run_served(
            main(ns.events, ns.seconds, ns.rounds, ns.connections, ns.threads)
        )
    print(json.dumps(result, indent=2))
