"""API request path against a bare FastAPI peer, login against the argon2 ceiling.

    python -m bench.bench_api [--workers N] [--seconds S]

Starts the real server (uvicorn, as `bigfootlive serve` runs it) on a fresh PostgreSQL database
and a random Redis key prefix, seeds one tenant with ~1,000 users, then measures with `wrk` over
loopback:

(a) `GET /api/auth/me` and `GET /api/tenant/users` (authenticated, 50 users a page) side by side
    with `/bench/bare-me` and `/bench/bare-users` on the same server (same bytes, no auth/DB);
(b) `POST /api/auth/login` throughput against argon2 hashes/s (Settings defaults, all cores);
(c) `GET /health` latency alone and during the login storm, probed 50 times a second.

Prints one JSON document. The database and Redis keys are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import secrets
import shutil
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench import loadgen, summary
from bench.argon2_ceiling import argon2_ceiling
from bench.loadgen import (
    Prober,
    Uvicorn,
    Wrk,
    get_script,
    post_json_script,
    run_wrk,
)
from bench.pgcpu import DatabaseCpu
from bench.side_by_side import Pair, pair_figures, ratio, side_by_side
from bigfootlive.authz.roles import Role
from bigfootlive.config import Settings
from bigfootlive.migrations import upgrade_database

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def server_env(database_url: str, prefix: str, **extra: str) -> dict[str, str]:
    """The settings every benchmark's BigfootLive runs with (production mode on its own
    database and Redis key prefix, a fresh JWT secret, migrations already run), plus `extra`."""
    return {
        "NODE_ENV": "production",
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": prefix,
        "JWT_SECRET": secrets.token_urlsafe(48),
        "AUTO_MIGRATE": "false",
        **extra,
    }


PASSWORD = "plausible-tundra-velvet-42"
TENANT = "bench"
ADMINS = 10
MODERATORS = 20
SIGNED_IN = 64  # users holding a session for the authenticated GETs
GET_CONNECTIONS = 32
# /health is probed as a load balancer or an orchestrator probes it, at a fixed rate on one
# connection, alone and during the login storm (it used to be wrk as fast as it could go: 2,500
# requests/s that took a core from the logins it was meant to watch).
HEALTH_PROBES_PER_S = 50
LOGIN_CONNECTIONS = 16


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _email(i: int) -> str:
    return f"user{i:04d}@bench.example"


def _role(i: int) -> Role:
    if i < ADMINS:
        return Role.ADMIN
    if i < ADMINS + MODERATORS:
        return Role.MODERATOR
    return Role.STREAMER if i % 4 == 0 else Role.VIEWER


# ---------------------------------------------------------------- database and seed


async def _seed(settings: Settings, users: int) -> None:
    """One tenant and `users` accounts (bench.loadgen.seed_accounts)."""
    await loadgen.seed_accounts(
        settings,
        slug=TENANT,
        name="Bench",
        password=PASSWORD,
        emails=[_email(i) for i in range(users)],
        roles=[_role(i).value for i in range(users)],
    )


async def _sign_in(base_url: str, count: int) -> list[str]:
    limit = asyncio.Semaphore(8)

    async def one(http: httpx.AsyncClient, i: int) -> str:
        async with limit:
            response = await http.post(
                "/api/auth/login",
                json={"tenant": TENANT, "email": _email(i), "password": PASSWORD},
            )
        response.raise_for_status()
        return str(response.json()["access_token"])

    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        return list(await asyncio.gather(*(one(http, i) for i in range(count))))


# ---------------------------------------------------------------- the run


def _read_targets(me: Pair, users: Pair) -> list[dict[str, Any]]:
    return [
        summary.target(
            f"GET {path} vs bare route, same bytes (req/s ratio)",
            ratio(pair.real.rps, pair.bare.rps),
            goal,
            load_average=pair.load_average,
            detail=f"{pair.real.rps:,.0f} vs {pair.bare.rps:,.0f} req/s; server CPU/request "
            f"{pair.cpu_ms_per_request['real']} vs {pair.cpu_ms_per_request['bare']} ms",
        )
        for path, pair, goal in (
            ("/api/auth/me", me, 0.5),
            ("/api/tenant/users (50)", users, 0.35),
        )
    ]


def _machine(load_before: tuple[float, float, float]) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count() or 1,
        "python": platform.python_version(),
        "platform": platform.platform(),
        # Other work on the machine skews every figure; ratios are the robust ones.
        "load_average_1m_before": round(load_before[0], 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
    }


def run(
    workers: int,
    seconds: float,
    users: int,
    *,
    rounds: int = 4,
    reads_only: bool = False,
    login_only: bool = False,
) -> dict[str, Any]:
    for host, port, what in (("127.0.0.1", 5432, "PostgreSQL"), ("127.0.0.1", 6379, "Redis")):
        if not _port_open(host, port):
            sys.exit(f"{what} is not reachable on {host}:{port}")
    started = time.monotonic()
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    prefix = f"bench:{uuid.uuid4().hex[:10]}:"
    database_url = asyncio.run(loadgen.create_database())
    server: Uvicorn | None = None
    succeeded = False
    try:
        asyncio.run(upgrade_database(database_url))
        env = server_env(
            database_url,
            prefix,
            LOGIN_RATE_LIMIT="1000000/minute",
            MAIL_OUTBOX_DIR=str(workdir / "outbox"),
            BENCH_FIXTURE_DIR=str(workdir),
        )
        # The same environment the server reads, so seed and server agree on every setting.
        os.environ.update(env)
        settings = Settings(_env_file=None)
        asyncio.run(_seed(settings, users))  # as the tables' owner
        # The server as the application role: row-level security applies, as in production.
        env["DATABASE_URL"] = asyncio.run(loadgen.app_role_url(database_url))
        env["DATABASE_MIGRATION_URL"] = database_url

        server = Uvicorn(
            "bench.server:create_bench_app", env=env, workers=workers, log=workdir / "server.log"
        )
        server.wait_ready()
        url = server.base_url
        tokens = asyncio.run(_sign_in(url, SIGNED_IN))
        staff_tokens = tokens[: ADMINS + MODERATORS]

        # The bare routes answer with the real responses' bytes.
        me = httpx.get(url + "/api/auth/me", headers={"Authorization": f"Bearer {tokens[0]}"})
        (workdir / "me.json").write_bytes(me.content)
        (workdir / "users.json").write_bytes(
            httpx.get(
                url + "/api/tenant/users", headers={"Authorization": f"Bearer {staff_tokens[0]}"}
            ).content
        )

        me_pair = users_pair = None
        read_targets: list[dict[str, Any]] = []
        if not login_only:
            scripts = {
                "me": get_script("/api/auth/me", tokens),
                "bare_me": get_script("/bench/bare-me", tokens),
                "users": get_script("/api/tenant/users", staff_tokens),
                "bare_users": get_script("/bench/bare-users", staff_tokens),
            }
            for script in scripts.values():  # warm up every worker's pools and caches
                run_wrk(url, script, seconds=1, connections=GET_CONNECTIONS)
            db, pair = (
                DatabaseCpu(database_url),
                functools.partial(side_by_side, server, connections=GET_CONNECTIONS),
            )
            me_pair = pair(scripts["me"], scripts["bare_me"], seconds=seconds, rounds=rounds, db=db)
            users_pair = pair(
                scripts["users"], scripts["bare_users"], seconds=seconds, rounds=rounds, db=db
            )
            read_targets = _read_targets(me_pair, users_pair)

        if reads_only:
            assert me_pair is not None
            assert users_pair is not None
            server.stop()
            server = None
            succeeded = True
            return {
                "benchmark": "api",
                "machine": _machine(load_before),
                "auth_me": pair_figures(me_pair),
                "tenant_users_page_50": pair_figures(users_pair),
                "targets": read_targets,
                "elapsed_s": round(time.monotonic() - started, 1),
            }
        # The server's CPU with no request (its loops: flush, job consumers, ...), per second;
        # then per /health request: both are taken out of the storm's CPU below.
        # The same for the database's backends (the run's database is the server's alone).
        pg = DatabaseCpu(database_url)
        idle_pg_before = pg.seconds()
        idle_cpu, idle_start = server.cpu_seconds(), time.monotonic()
        time.sleep(3)
        idle_cpu = (server.cpu_seconds() - idle_cpu) / (time.monotonic() - idle_start)
        idle_pg = DatabaseCpu.spent(idle_pg_before, pg.seconds()) / (time.monotonic() - idle_start)
        health_cpu, health_start = server.cpu_seconds(), time.monotonic()
        health_idle = Prober(url + "/health", per_second=HEALTH_PROBES_PER_S, seconds=4).result()
        health_cpu = (
            server.cpu_seconds() - health_cpu - idle_cpu * (time.monotonic() - health_start)
        )
        health_cpu /= max(health_idle.requests, 1)
        login_bodies = [
            json.dumps({"tenant": TENANT, "email": _email(i), "password": PASSWORD})
            for i in range(SIGNED_IN, users)
        ]
        cpus = os.cpu_count() or 1
        # The ceiling before the storm and after it (the server stopped), averaged: load from
        # elsewhere on a shared machine that comes or goes during the run weighs on both sides.
        ceiling_before, hash_cpu_before = argon2_ceiling(settings, seconds=4, processes=cpus)
        # The same at the hashing pool's priority: on a shared machine the pool's nice value
        # costs it its share of the cores against everything else at nice 0, a cost of the
        # machine's other work rather than of the sign-in path.
        pool_nice = settings.password_hash_nice
        niced_before = argon2_ceiling(settings, seconds=4, processes=cpus, nice=pool_nice)[0]
        storm_seconds = max(6.0, seconds + 4)
        pg_before = pg.seconds()
        storm_cpu, storm_start = server.cpu_seconds(), time.monotonic()
        hashing_before = server.hashing_cpu_seconds(pool_nice) if pool_nice else {}
        storm = Wrk(
            url + "/api/auth/login",
            post_json_script("/api/auth/login", login_bodies),
            seconds=storm_seconds,
            connections=LOGIN_CONNECTIONS,
        )
        time.sleep(1)  # let the storm build up before sampling /health
        storm_load = os.getloadavg()[0]
        health_during = Prober(
            url + "/health", per_second=HEALTH_PROBES_PER_S, seconds=storm_seconds - 2
        ).result()
        login = storm.result()
        storm_cpu = server.cpu_seconds() - storm_cpu - health_during.requests * health_cpu
        storm_cpu -= idle_cpu * (time.monotonic() - storm_start)
        hashing_after = server.hashing_cpu_seconds(pool_nice) if pool_nice else {}
        hashing = [t - hashing_before.get(pid, 0.0) for pid, t in hashing_after.items()]
        hashing = sorted((h for h in hashing if h > 0.005), reverse=True)  # not the supervisor
        storm_pg = DatabaseCpu.spent(pg_before, pg.seconds())
        storm_pg -= idle_pg * (time.monotonic() - storm_start)
        server.stop()
        server = None

        ceiling_after, hash_cpu_after = argon2_ceiling(settings, seconds=4, processes=cpus)
        niced_after = argon2_ceiling(settings, seconds=4, processes=cpus, nice=pool_nice)[0]
        ceiling = (ceiling_before + ceiling_after) / 2
        niced_ceiling = (niced_before + niced_after) / 2
        hash_cpu_ms = (hash_cpu_before + hash_cpu_after) / 2
        # CPU per sign-in in the server processes (the hash, and everything else it does; not
        # PostgreSQL's or Redis's), against one hash's: what the server's own CPU would allow.
        login_cpu_ms = 1000 * storm_cpu / login.requests if login.requests else None
        login_pg_ms = 1000 * storm_pg / login.requests if login.requests else None
        succeeded = True
        return {
            "benchmark": "api",
            "machine": _machine(load_before),
            "config": {
                "uvicorn_workers": workers,
                "database": "postgresql",
                "redis": True,
                "users_seeded": users,
                "seconds_per_run": seconds,
                "rounds_per_run": rounds,
                "get_connections": GET_CONNECTIONS,
                "login_connections": LOGIN_CONNECTIONS,
                "argon2": {
                    "time_cost": settings.argon2_time_cost,
                    "memory_kib": settings.argon2_memory_kib,
                    "parallelism": settings.argon2_parallelism,
                },
            },
            "auth_me": pair_figures(me_pair) if me_pair else None,
            "tenant_users_page_50": pair_figures(users_pair) if users_pair else None,
            "login": {
                "bigfootlive": login.figures(),
                "logins_per_s": round(login.rps, 1),
                "argon2_hashes_per_s_all_cores": round(ceiling, 1),
                "argon2_hashes_per_s_before_and_after": [
                    round(ceiling_before, 1),
                    round(ceiling_after, 1),
                ],
                "percent_of_argon2_ceiling": round(100 * login.rps / ceiling, 1),
                "argon2_hashes_per_s_at_pool_nice": {
                    "nice": pool_nice,
                    "before_and_after": [round(niced_before, 1), round(niced_after, 1)],
                    "percent_of_it": round(100 * login.rps / niced_ceiling, 1),
                },
                "server_cpu_ms_per_login": round(login_cpu_ms, 2) if login_cpu_ms else None,
                "argon2_cpu_ms_per_hash": round(hash_cpu_ms, 2),
                # The server's CPU per sign-in in its hashing threads (at PASSWORD_HASH_NICE)
                # and the rest (event loops), and each worker's hashing CPU during the storm:
                # one worker alone hashing is what the connections' landing left to one core.
                "server_hashing_thread_cpu_ms_per_login": (
                    round(1000 * sum(hashing) / login.requests, 2) if hashing else None
                ),
                "server_other_cpu_ms_per_login": (
                    round(login_cpu_ms - 1000 * sum(hashing) / login.requests, 2)
                    if hashing and login_cpu_ms
                    else None
                ),
                "hashing_cpu_s_by_worker": [round(h, 2) for h in hashing],
                "cpu_percent_of_argon2": (
                    round(100 * hash_cpu_ms / login_cpu_ms, 1) if login_cpu_ms else None
                ),
                # the hash's share of a sign-in's server + database CPU (Redis, wrk: ~0.1 ms)
                "postgresql_cpu_ms_per_login": round(login_pg_ms, 2) if login_pg_ms else None,
                "cpu_percent_of_argon2_with_postgresql": (
                    round(100 * hash_cpu_ms / (login_cpu_ms + login_pg_ms), 1)
                    if login_cpu_ms and login_pg_ms
                    else None
                ),
            },
            "health": {
                "idle": health_idle.figures(),
                "during_login_storm": health_during.figures(),
                "p99_ratio_storm_vs_idle": ratio(health_during.p99_ms, health_idle.p99_ms),
            },
            "targets": [
                *read_targets,
                summary.target(
                    "POST /api/auth/login vs argon2id ceiling, all cores",
                    100 * login.rps / ceiling,
                    90,
                    unit="%",
                    load_average=storm_load,
                    detail=f"{login.rps:,.1f} logins/s vs {ceiling:,.1f} hashes/s",
                ),
                summary.target(
                    "GET /health p99 during a login storm vs idle",
                    ratio(health_during.p99_ms, health_idle.p99_ms),
                    3,
                    better="lower",
                    load_average=storm_load,
                    detail=f"{health_during.p99_ms} vs {health_idle.p99_ms} ms",
                ),
            ],
            "elapsed_s": round(time.monotonic() - started, 1),
        }
    finally:
        if server is not None:
            server.stop()
        asyncio.run(loadgen.drop_database(database_url))
        asyncio.run(loadgen.delete_redis_prefix(REDIS_URL, prefix))
        if succeeded:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"server log kept in {workdir}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="uvicorn worker processes (default: one per core)",
    )
    parser.add_argument("--seconds", type=float, default=8, help="length of each measured run")
    parser.add_argument("--users", type=int, default=1000, help="users seeded in the tenant")
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="each GET run is split in this many alternating rounds with its bare peer",
    )
    parser.add_argument(
        "--reads-only",
        action="store_true",
        help="only the authenticated GETs (skip the login storm, /health and the argon2 ceiling)",
    )
    parser.add_argument(
        "--login-only",
        action="store_true",
        help="only the login storm, /health and the argon2 ceiling (skip the GETs)",
    )
    args = parser.parse_args(argv)
    result = run(
        args.workers,
        args.seconds,
        args.users,
        rounds=args.rounds,
        reads_only=args.reads_only,
        login_only=args.login_only,
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
