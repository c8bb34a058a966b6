"""Beacon ingest: beacons/s for one API process, next to a bare endpoint taking the same bytes.

    python -m bench.bench_beacons [--seconds 12] [--rounds 4] [--connections 16]
        [--batches 1,10,50] [--memory]

Starts `bigfootlive serve` (one uvicorn process, the production options) on PostgreSQL and the
Redis on 127.0.0.1:6379 (`--memory`: SQLite and the in-process backends), creates a tenant, a
streamer and an armed public event through the CLI and the API, then drives with wrk:

- `POST /api/analytics/events/{id}/beacons`: heartbeat batches of `--batches` beacons from 5,000
  distinct anonymous viewers in turn (the real validation, rate limits, counters and buffer);
- `POST /bench/bare-beacons/{id}`, added by this benchmark's app factory: reads the same bytes
  and answers the same 202 body, with no validation and no work, behind the same middleware.

Each batch size is measured in `--rounds` alternating runs of each route (ours, bare, bare,
ours, ...; `bench.side_by_side`), so load from elsewhere on a shared machine falls on both
alike. Prints JSON: for each batch size requests/s, beacons/s, latency, and the ratio to the
bare route (and per round); the `targets` list for the `make bench` summary table; the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response

from bench import loadgen
from bench.pgcpu import DatabaseCpu
from bench.side_by_side import ratio, side_by_side
from bench.summary import target

PASSWORD = "plausible-tundra-velvet-42"
VIEWERS = 5000
BATCH_TARGET = 10  # the batch size the targets are measured with
# After each run, before the next: the server's flush (every ANALYTICS_FLUSH_SECONDS, 1 s) of
# the run's last beacons and the roll-up job it sends run here, counted in the run's CPU.
SETTLE_S = 1.5


def create_bench_app() -> FastAPI:
    """The production app plus the bare reference route (uvicorn factory)."""
    from bigfootlive.app import create_app
    from bigfootlive.config import Settings

    app = create_app(Settings())

    @app.post("/bench/bare-beacons/{event_id}", include_in_schema=False, status_code=202)
    async def bare_beacons(event_id: str, request: Request) -> Response:
        body = await request.body()
        accepted = body.count(b'"type"')  # the same answer, without parsing anything
        return Response(b'{"accepted":%d}' % accepted, 202, media_type="application/json")

    # Where the router meets it: just before the beacon route's router (the first one with the
    # /api/analytics prefix, included first by `create_app`), so that both routes are reached
    # after the same routes are tried (added last, the bare one came after every page of the
    # web app: a few hundred µs more per request than the beacon route).
    routes = app.router.routes
    bare = routes.pop()
    analytics = next(
        i
        for i, r in enumerate(routes)
        if getattr(getattr(r, "original_router", None), "prefix", None) == "/api/analytics"
    )
    routes.insert(analytics, bare)
    return app


def bodies(batch: int) -> list[str]:
    beacon = {"type": "heartbeat", "watched_ms": 10_000, "bitrate_kbps": 2500}
    return [
        json.dumps({"viewer_id": f"viewer-{n:05d}", "beacons": [beacon] * batch})
        for n in range(VIEWERS)
    ]


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    subprocess.run(
        [sys.executable, "-m", "bigfootlive.cli", *args],
        env=env,
        input=stdin,
        text=True,
        check=True,
        capture_output=True,
    )


def figures(run: loadgen.WrkResult, batch: int, cpu_ms: float | None) -> dict[str, Any]:
    out = run.figures()
    out["beacons_per_request"] = batch
    out["beacons_per_s"] = round(run.rps * batch) if not run.non_2xx else None
    if cpu_ms is not None:
        # The server's CPU (user + system) per request: what load from elsewhere on a shared
        # machine moves far less than requests/s. Its flush (every ANALYTICS_FLUSH_SECONDS)
        # and the roll-up jobs it runs are in it (each run is followed by SETTLE_S, counted).
        out["server_cpu_us_per_request"] = round(cpu_ms * 1000, 1)
        out["beacons_per_server_cpu_s"] = round(batch / cpu_ms * 1000)
    return out


def measure(
    server: loadgen.Uvicorn,
    event_id: str,
    batch: int,
    *,
    seconds: float,
    rounds: int,
    connections: int,
    db: DatabaseCpu | None,
) -> dict[str, Any]:
    """Ours against the bare route in `rounds` alternating rounds (ours, bare, bare, ours, ...),
    each followed by `SETTLE_S` (the last flush of a run, and its roll-up job, land in its own
    side, not in the next run)."""
    payloads = bodies(batch)
    pair = side_by_side(
        server,
        loadgen.post_json_script(f"/api/analytics/events/{event_id}/beacons", payloads),
        loadgen.post_json_script(f"/bench/bare-beacons/{event_id}", payloads),
        seconds=seconds,
        rounds=rounds,
        connections=connections,
        db=db,
        settle=SETTLE_S,
    )
    cpu = pair.cpu_ms_per_request
    return {
        "ours": figures(pair.real, batch, cpu["real"]),
        "bare": figures(pair.bare, batch, cpu["bare"]),
        "throughput_ratio": ratio(pair.real.rps, pair.bare.rps),
        "round_throughput_ratios": pair.round_ratios,
        # bare / ours server CPU per request: the ratio the server's CPU alone allows
        "cpu_ratio": ratio(cpu["bare"] or 0, cpu["real"] or 0),
        "postgres_cpu_us_per_request": (
            None
            if pair.db_cpu_ms_per_request is None
            else round(pair.db_cpu_ms_per_request * 1000, 1)
        ),
        "load_average_1m": round(pair.load_average, 2),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=12, help="per side, split in --rounds alternating runs"
    )
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--batches", default="1,10,50")
    parser.add_argument("--memory", action="store_true", help="SQLite + in-process backends")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    load_before = round(os.getloadavg()[0], 2)
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    db_url = None
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "NODE_ENV": "production",
            "JWT_SECRET": "bench-" + uuid.uuid4().hex + uuid.uuid4().hex,
            "LOG_LEVEL": "WARNING",
            "MAIL_OUTBOX_DIR": str(Path(tmp) / "outbox"),
            # the benchmark measures the path, not the limits (which stay in the path)
            "ANALYTICS_BEACON_RATE_LIMIT": "1000000/minute",
            "ANALYTICS_BEACON_IP_RATE_LIMIT": "100000000/minute",
            "JOBS_SCHEDULER": "false",
            "CONTAINER_MANAGER_ENABLED": "false",
        }
        if args.memory:
            env["DATABASE_URL"] = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            env["ALLOW_SQLITE_IN_PRODUCTION"] = "true"
        else:
            db_url = await loadgen.create_database()
            env["DATABASE_URL"] = db_url
            env["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
            env["REDIS_KEY_PREFIX"] = f"{prefix}:"
            env["JOBS_QUEUE_PREFIX"] = prefix
            env["JOBS_INPROCESS_WORKER"] = "true"  # the roll-up jobs run here, as embedded
        server = None
        try:
            cli(env, "migrate")
            cli(env, "tenant", "create", "--slug", "bench", "--name", "Bench")
            cli(
                env, "user", "create", "--tenant", "bench", "--email", "streamer@example.com",
                "--name", "Streamer", "--role", "streamer", "--password-stdin",
                stdin=PASSWORD + "\n",
            )  # fmt: skip
            if db_url is not None:  # the server as the application role (row-level security)
                env["DATABASE_URL"] = await loadgen.app_role_url(db_url)
                env["DATABASE_MIGRATION_URL"] = db_url
            server = loadgen.Uvicorn(
                "bench.bench_beacons:create_bench_app",
                env=env,
                workers=1,
                log=Path(tmp) / "server.log",
            )
            server.wait_ready()
            base = server.base_url
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                login = await http.post(
                    "/api/auth/login",
                    json={"tenant": "bench", "email": "streamer@example.com", "password": PASSWORD},
                )
                headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
                event = (
                    await http.post("/api/events", json={"title": "Bench"}, headers=headers)
                ).json()
                started = await http.post(f"/api/events/{event['id']}/start", headers=headers)
                started.raise_for_status()
            for path in (
                f"/bench/bare-beacons/{event['id']}",
                f"/api/analytics/events/{event['id']}/beacons",
            ):
                loadgen.run_wrk(  # warm-up
                    base,
                    loadgen.post_json_script(path, bodies(1)),
                    seconds=1,
                    connections=args.connections,
                )
            results: dict[str, Any] = {}
            for batch in batches:
                results[f"batch_{batch}"] = await asyncio.to_thread(
                    measure,
                    server,
                    event["id"],
                    batch,
                    seconds=args.seconds,
                    rounds=args.rounds,
                    connections=args.connections,
                    db=None if db_url is None else DatabaseCpu(db_url),
                )
        finally:
            if server is not None:
                server.stop()
            if db_url is not None:
                await loadgen.drop_database(db_url)
                await drop_redis_keys(f"{prefix}*", f"*{prefix}*")
    targets = []
    main_run = results.get(f"batch_{BATCH_TARGET}")
    if main_run is not None:
        ours, bare = main_run["ours"], main_run["bare"]
        targets = [
            target(
                f"player beacons per process, batches of {BATCH_TARGET}",
                ours["beacons_per_s"] or 0,
                20_000,
                unit="beacons/s",
                detail=f"{ours['requests_per_s']:,.1f} requests/s",
            ),
            target(
                f"player beacons vs bare endpoint, same bytes (batches of {BATCH_TARGET})",
                main_run["throughput_ratio"],
                0.5,
                detail=f"{ours['requests_per_s']:,.1f} vs {bare['requests_per_s']:,.1f} req/s",
            ),
        ]
    json.dump(
        {
            "benchmark": "beacons",
            "server": "1 uvicorn process (uvloop, httptools), NODE_ENV=production",
            "backend": "sqlite + in-process" if args.memory else "postgresql + redis",
            "load": (
                f"wrk -t1 -c{args.connections}, {args.seconds} s per side in {args.rounds}"
                f" alternating rounds, each followed by {SETTLE_S} s"
            ),
            "load_average_1m_before": load_before,
            "load_average_1m_after": round(os.getloadavg()[0], 2),
            "targets": targets,
            "results": results,
        },
        sys.stdout,
        indent=2,
    )
    print()


async def drop_redis_keys(*patterns: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    try:
        for pattern in patterns:
            found = [key async for key in client.scan_iter(match=pattern, count=1000)]
            for start in range(0, len(found), 1000):
                await client.delete(*found[start : start + 1000])
    finally:
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
