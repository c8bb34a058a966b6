"""CPU time per `GET /api/tenant/users` (first page, 50 members) next to its bare route, in one
process, and PostgreSQL's time per page.

    python -m bench.cpu_members [--users 1000] [--requests 2000] [--concurrency 8]
                                [--profile out.prof]

The benchmark's app (`bench.server:create_bench_app`: the production app, `NODE_ENV=production`,
plus `/bench/bare-users`, which answers the same bytes without authentication, database or
serialization) on a fresh PostgreSQL database served as the application role (row-level
security applies) and a Redis prefix of its own, driven through httpx's ASGI transport (no
sockets, no load generator on the cores), as an admin signed in through the real login. The
process's CPU time over the requests, per request, for each side in alternating rounds: both
include the same client and middleware overhead, so the difference is the route's own cost. A
figure the load of a shared machine moves far less than requests/s. PostgreSQL's CPU is not in
it: `db_ms_per_page` is the server-side execution time of the page's statement (`EXPLAIN
ANALYZE` of the same call, median of 50). `--profile` writes a cProfile of the measured member
list requests. Not run by `make bench` (no `bench_` prefix).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from bench import loadgen
from bench.bench_api import REDIS_URL, server_env
from bigfootlive.migrations import upgrade_database

PASSWORD = "plausible-tundra-velvet-42"
TENANT = "cpumembers"
ROUNDS = 4


def _email(i: int) -> str:
    return f"user{i:04d}@cpu.example"


async def _seed(users: int) -> None:
    from bigfootlive.config import Settings

    roles = ["admin"] + ["viewer"] * (users - 1)
    await loadgen.seed_accounts(
        Settings(), slug=TENANT, name="CPU", password=PASSWORD,
        emails=[_email(i) for i in range(users)], roles=roles,
    )  # fmt: skip


async def _db_ms_per_page(app: Any) -> float | None:
    """Server-side execution time of the first page's statement as the app runs it."""
    state = app.state.bigfoot
    if state.db.engine.dialect.name != "postgresql":
        return None
    async with state.db.engine.connect() as conn:
        pooled = await conn.get_raw_connection()
        driver: Any = pooled.driver_connection
        tenant = await driver.fetchval("SELECT id FROM tenants WHERE slug = $1", TENANT)
        sql = await _page_sql(driver)
        times = []
        for _ in range(50):
            plan = await driver.fetchval(
                f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", str(tenant), "", tenant, 51
            )
            plan = json.loads(plan) if isinstance(plan, str) else plan
            times.append(plan[0]["Execution Time"])
        return round(statistics.median(times), 3)


async def _page_sql(driver: Any) -> str:
    """The SQL function the first page calls (the newest migration's, when there are two)."""
    names = await driver.fetch(
        "SELECT proname FROM pg_proc WHERE proname LIKE 'bfl_users_first_page%' ORDER BY proname"
    )
    name = names[-1]["proname"]
    return f"SELECT * FROM {name}($1, $2, $3, $4)"  # noqa: S608 - a name from the catalog


async def _measure(requests: int, concurrency: int, profile: str | None) -> dict[str, Any]:
    from bench.server import create_bench_app

    app = create_bench_app()
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://cpu") as http:
            login = await http.post(
                "/api/auth/login", json={"tenant": TENANT, "email": _email(0), "password": PASSWORD}
            )
            login.raise_for_status()
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            page = await http.get("/api/tenant/users", headers=headers)
            page.raise_for_status()
            fixture = Path(os.environ["BENCH_FIXTURE_DIR"], "users.json")
            await asyncio.to_thread(fixture.write_bytes, page.content)
            limit = asyncio.Semaphore(concurrency)

            async def one(path: str) -> None:
                async with limit:
                    response = await http.get(path, headers=headers)
                assert response.status_code == 200, response.text

            async def run(path: str, count: int, profiler: cProfile.Profile | None) -> float:
                cpu = time.process_time()
                if profiler:
                    profiler.enable()
                await asyncio.gather(*(one(path) for _ in range(count)))
                if profiler:
                    profiler.disable()
                return time.process_time() - cpu

            await run("/api/tenant/users", 200, None)  # warm up pools and caches
            await run("/bench/bare-users", 200, None)
            profiler = cProfile.Profile(time.process_time) if profile else None
            per_round = max(1, requests // ROUNDS)
            ours = bare = 0.0
            for n in range(ROUNDS):  # ours, bare, bare, ours, ...
                order = ("ours", "bare") if n % 2 == 0 else ("bare", "ours")
                for side in order:
                    if side == "ours":
                        ours += await run("/api/tenant/users", per_round, profiler)
                    else:
                        bare += await run("/bench/bare-users", per_round, None)
            if profiler and profile:
                profiler.dump_stats(profile)
            db_ms = await _db_ms_per_page(app)
        done = per_round * ROUNDS
        return {
            "requests_each": done,
            "concurrency": concurrency,
            "items": len(page.json()["items"]),
            "body_bytes": len(page.content),
            "cpu_ms_per_request": {
                "bigfootlive": round(1000 * ours / done, 3),
                "bare": round(1000 * bare / done, 3),
            },
            "cpu_ms_per_request_above_bare": round(1000 * (ours - bare) / done, 3),
            "cpu_ratio": round(bare / ours, 3) if ours else None,
            "db_ms_per_page": db_ms,
            "load_average_1m": round(os.getloadavg()[0], 2),
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--profile", help="write a cProfile of the measured member list requests")
    args = parser.parse_args(argv)
    prefix = f"bench:{uuid.uuid4().hex[:10]}:"
    workdir = tempfile.mkdtemp(prefix="bench-members-")
    database_url = asyncio.run(loadgen.create_database())
    try:
        asyncio.run(upgrade_database(database_url))
        os.environ.update(
            server_env(
                database_url,
                prefix,
                LOG_LEVEL="WARNING",
                JOBS_SCHEDULER="false",
                CONTAINER_MANAGER_ENABLED="false",
                MEDIA_SERVER_MODE="none",
                MAIL_OUTBOX_DIR=workdir + "/outbox",
                BENCH_FIXTURE_DIR=workdir,
            )
        )
        asyncio.run(_seed(args.users))  # as the tables' owner
        os.environ["DATABASE_MIGRATION_URL"] = database_url
        os.environ["DATABASE_URL"] = asyncio.run(loadgen.app_role_url(database_url))
        result = asyncio.run(_measure(args.requests, args.concurrency, args.profile))
    finally:
        asyncio.run(loadgen.drop_database(database_url))
        asyncio.run(loadgen.delete_redis_prefix(REDIS_URL, prefix))
    print(json.dumps({"benchmark": "cpu_members", **result}, indent=2))


if __name__ == "__main__":
    main()
