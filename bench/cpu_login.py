"""CPU time per password sign-in outside the argon2 hash, in one process, and its statements.

    python -m bench.cpu_login [--users 600] [--concurrency 8] [--profile out.prof]

The production app (`create_app(Settings())`, `NODE_ENV=production`) on a fresh PostgreSQL
database served as the application role (row-level security applies) and a Redis prefix of its
own, driven through httpx's ASGI transport (no sockets, no load generator on the cores). Each
seeded user signs in once, `--concurrency` at a time. The hash runs in the password pool's
threads: each verification's thread CPU time is measured there and taken out of the process's
CPU time, so what is left is everything else a sign-in costs this process (routing, validation,
queries, Redis, tokens, serialization; and the client's side of the transport, the same in
every run). A figure the load of a shared machine moves far less than logins/s. Also: the
database statements and round trips per sign-in, the CPU of the PostgreSQL backends that served
this process (`/proc/<pid>/stat` of each backend of the run's database: same machine), and the
Redis commands and round trips per sign-in (Redis's own CPU is shared with whatever else uses
it, so it is not measured; each round trip costs it some tens of microseconds). `--profile`
writes a cProfile of the sign-ins (the event loop's thread), timed in that thread's CPU time
(not wall time, which on a busy machine is mostly the time it waited for a core). Not run by
`make bench` (no `bench_` prefix).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import threading
import time
import uuid
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from redis.asyncio.connection import AbstractConnection
from sqlalchemy import event

from bench import loadgen
from bench.bench_api import REDIS_URL, server_env
from bench.pgcpu import DatabaseCpu
from bigfootlive.migrations import upgrade_database

PASSWORD = "plausible-tundra-velvet-42"
TENANT = "cpu"


# asyncpg protocol calls that are one round trip each (a simple query, a prepare, a bind and
# execute); counted by a proxy put in front of each connection's protocol.
_ROUND_TRIPS = frozenset(
    {"query", "prepare", "bind_execute", "bind_execute_many", "bind", "execute"}
)


class _CountingProtocol:
    def __init__(self, protocol: Any, counter: list[int]) -> None:
        self._protocol = protocol
        self._counter = counter

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._protocol, name)
        if name in _ROUND_TRIPS:
            self._counter[0] += 1
        return value


def _email(i: int) -> str:
    return f"user{i:04d}@cpu.example"


async def _seed(users: int) -> None:
    from bigfootlive.config import Settings

    await loadgen.seed_accounts(
        Settings(),
        slug=TENANT,
        name="CPU",
        password=PASSWORD,
        emails=[_email(i) for i in range(users)],
    )


async def _measure(
    users: int, concurrency: int, profile: str | None, admin_url: str
) -> dict[str, Any]:
    from bigfootlive.app import create_app
    from bigfootlive.config import Settings

    app = create_app(Settings())
    async with LifespanManager(app) as manager:
        state = app.state.bigfoot
        hash_cpu = [0.0]
        lock = threading.Lock()
        verify = state.passwords._verify

        def timed_verify(stored: str | None, password: str) -> tuple[bool, bool]:
            start = time.thread_time()
            try:
                return verify(stored, password)
            finally:
                with lock:
                    hash_cpu[0] += time.thread_time() - start

        state.passwords._verify = timed_verify
        statements = [0]

        def count(*_: Any) -> None:
            statements[0] += 1

        event.listen(state.db.engine.sync_engine, "before_cursor_execute", count)
        pg_trips = [0]

        def counting(dbapi_connection: Any, _: Any) -> None:
            driver = dbapi_connection.driver_connection
            driver._protocol = _CountingProtocol(driver._protocol, pg_trips)

        event.listen(state.db.engine.sync_engine, "connect", counting)
        redis_trips = [0]
        send = AbstractConnection.send_packed_command

        async def counted_send(self: Any, command: Any, check_health: bool = True) -> None:
            redis_trips[0] += 1
            await send(self, command, check_health)

        AbstractConnection.send_packed_command = counted_send  # type: ignore[method-assign]
        transport = httpx.ASGITransport(app=manager.app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://cpu") as http:
            limit = asyncio.Semaphore(concurrency)

            async def one(i: int) -> None:
                body = {"tenant": TENANT, "email": _email(i), "password": PASSWORD}
                async with limit:
                    response = await http.post("/api/auth/login", json=body)
                assert response.status_code == 200, response.text

            warm = min(20, users // 4)
            await asyncio.gather(*(one(i) for i in range(warm)))
            statements[0], hash_cpu[0], pg_trips[0], redis_trips[0] = 0, 0.0, 0, 0
            database_cpu = DatabaseCpu(admin_url)
            backends_before = await database_cpu.read()
            # CPU time of this (the event loop's) thread: wall time is mostly waiting for a core
            profiler = cProfile.Profile(time.thread_time) if profile else None
            cpu, wall = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            await asyncio.gather(*(one(i) for i in range(warm, users)))
            if profiler:
                profiler.disable()
                profiler.dump_stats(profile)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            backends_after = await database_cpu.read()
            backends = DatabaseCpu.spent(backends_before, backends_after)
        AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
        done = users - warm
        return {
            "sign_ins": done,
            "concurrency": concurrency,
            "cpu_ms_per_sign_in_outside_hash": round(1000 * (cpu - hash_cpu[0]) / done, 2),
            "hash_cpu_ms_per_sign_in": round(1000 * hash_cpu[0] / done, 2),
            "statements_per_sign_in": round(statements[0] / done, 2),
            "postgresql_round_trips_per_sign_in": round(pg_trips[0] / done, 2),
            "postgresql_backend_cpu_ms_per_sign_in": round(1000 * backends / done, 2),
            "postgresql_backends": [len(backends_before), len(backends_after)],
            "redis_round_trips_per_sign_in": round(redis_trips[0] / done, 2),
            "wall_s": round(wall, 2),
            "load_average_1m": round(os.getloadavg()[0], 2),
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--profile", help="write a cProfile of the measured sign-ins here")
    args = parser.parse_args(argv)
    prefix = f"bench:{uuid.uuid4().hex[:10]}:"
    database_url = asyncio.run(loadgen.create_database())
    try:
        asyncio.run(upgrade_database(database_url))
        os.environ.update(
            server_env(
                database_url,
                prefix,
                LOGIN_RATE_LIMIT="1000000/minute",
                LOG_LEVEL="WARNING",
                JOBS_SCHEDULER="false",
                CONTAINER_MANAGER_ENABLED="false",
                MEDIA_SERVER_MODE="none",
            )
        )
        asyncio.run(_seed(args.users))  # as the tables' owner
        os.environ["DATABASE_MIGRATION_URL"] = database_url
        os.environ["DATABASE_URL"] = asyncio.run(loadgen.app_role_url(database_url))
        result = asyncio.run(_measure(args.users, args.concurrency, args.profile, database_url))
    finally:
        asyncio.run(loadgen.drop_database(database_url))
        asyncio.run(loadgen.delete_redis_prefix(REDIS_URL, prefix))
    print(json.dumps({"benchmark": "cpu_login", **result}, indent=2))


if __name__ == "__main__":
    main()
