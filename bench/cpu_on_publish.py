"""CPU time and round trips per media-server publish callback, next to the bare route.

    python -m bench.cpu_on_publish [--events 1500] [--profile out.prof]

The app of `bench_on_publish` (PostgreSQL served as the application role, so row-level security
applies; Redis under a prefix of its own), driven through httpx's ASGI transport one request at
a time (no sockets, no load generator on the cores). For the first publishes of armed events,
their repeats (retries), and the bare route, in alternating halves:

- `python_us`: this process's CPU time per request (the client's side of the transport
  included, the same for every side: compare differences, `over_bare_us`);
- `postgres_us`: the CPU time of the server's PostgreSQL backends (their /proc stat, found by
  the application name) per request;
- `pg_round_trips` / `redis_round_trips`: messages sent to each per request (asyncpg protocol
  calls; redis-py command and pipeline sends).

The process's CPU includes the app's periodic tasks (sweeps, the outbox relay) while the
requests run, as a server's would; uvloop, as `bigfootlive serve`. One request at a time: the
Redis calls of concurrent requests that the cache sends together (`kit.backends.redis`) each
make a round trip of their own here; `bench_on_publish` shows them shared.

A figure the load of a shared machine moves far less than requests/s. `--profile` writes a
cProfile of the measured first publishes (`--profile-repeat`: of the repeats). Not run by
`make bench` (no `bench_` prefix).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvloop
from asgi_lifespan import LifespanManager
from fastapi import Response

from bench import loadgen
from bench.bench_on_publish import drop_redis_keys, seed, settings_for
from bigfootlive.composition import AppState
from bigfootlive.migrations import upgrade_database

_TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> float:
    """Seconds of user + system CPU of a process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


@contextmanager
def _counting(calls: dict[str, int]) -> Iterator[None]:
    """Count the messages sent to PostgreSQL (asyncpg) and Redis (redis-py)."""
    import asyncpg.connection
    from redis.asyncio.connection import AbstractConnection

    patched: list[tuple[Any, str, Any]] = []

    def wrap(owner: Any, name: str, key: str) -> None:
        original = getattr(owner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            calls[key] += 1
            return original(*args, **kwargs)

        patched.append((owner, name, original))
        setattr(owner, name, counted)

    # One exchange with the server each: a statement with arguments (`fetch*` and `execute`
    # with arguments go through `_execute`; a prepared statement from asyncpg's cache is bind +
    # execute + sync), or a simple query (`execute` without arguments).
    connection = asyncpg.connection.Connection
    wrap(connection, "_execute", "pg")
    simple = connection.execute

    def execute(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        if not args:
            calls["pg"] += 1
        return simple(self, query, *args, **kwargs)

    patched.append((connection, "execute", simple))
    connection.execute = execute
    wrap(AbstractConnection, "send_packed_command", "redis")
    try:
        yield
    finally:
        for owner, name, original in reversed(patched):
            setattr(owner, name, original)


async def _backends(state: AppState, app_name: str) -> list[int]:
    async with state.db.engine.connect() as conn:
        rows = await conn.exec_driver_sql(
            f"SELECT pid FROM pg_stat_activity WHERE application_name = '{app_name}'"  # noqa: S608
        )
        return [int(r[0]) for r in rows]


async def _measure(
    n_events: int, profile: str | None, profile_repeat: str | None
) -> dict[str, Any]:
    db_url = await loadgen.create_database()
    tmp = Path(tempfile.mkdtemp(prefix="bfl-cpu-pub-"))
    key_prefix, queue_prefix = f"bench:{uuid.uuid4().hex[:8]}:", f"bench{uuid.uuid4().hex[:8]}"
    app_name = f"bflcpu{uuid.uuid4().hex[:8]}"
    try:
        await upgrade_database(db_url)
        owner = AppState.build(settings_for(db_url, key_prefix, queue_prefix, tmp))
        try:
            api_key, keys = await seed(owner, n_events)
        finally:
            await owner.close()
        app_url = await loadgen.app_role_url(db_url)
        from bigfootlive.app import create_app

        app = create_app(
            settings_for(
                app_url, key_prefix, queue_prefix, tmp, database_migration_url=db_url,
                database_application_name=app_name,
            )
        )  # fmt: skip

        @app.post("/bench/bare")
        async def bare() -> Response:
            return Response(b"0", media_type="text/plain")

        result: dict[str, Any] = {}
        async with LifespanManager(app) as manager:
            state: AppState = app.state.bigfoot
            asgi = manager.app
            headers = [
                (b"content-type", b"application/x-www-form-urlencoded"),
                (b"x-api-key", api_key.encode()),
                (b"host", b"cpu"),
            ]

            def body(key: str, client: str) -> bytes:
                return (
                    "app=ingest&flashver=FMLE/3.0&tcurl=rtmp://127.0.0.1/ingest&addr=127.0.0.1"
                    f"&clientid={client}&call=publish&name={key}&type=live"
                ).encode()

            async def post(path: str, content: bytes) -> int:
                """One request straight through the ASGI app (no client library)."""
                scope = {
                    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                    "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
                    "query_string": b"", "root_path": "", "client": ("127.0.0.1", 40000),
                    "server": ("127.0.0.1", 8000),
                    "headers": [*headers, (b"content-length", str(len(content)).encode())],
                }  # fmt: skip
                sent = False
                status = 0

                async def receive() -> dict[str, Any]:
                    nonlocal sent
                    if sent:
                        await asyncio.Event().wait()
                    sent = True
                    return {"type": "http.request", "body": content, "more_body": False}

                async def send(message: MutableMapping[str, Any]) -> None:
                    nonlocal status
                    if message["type"] == "http.response.start":
                        status = message["status"]

                await asgi(scope, receive, send)
                return status

            async def run(
                url: str, bodies: list[bytes], prof: cProfile.Profile | None
            ) -> dict[str, float]:
                calls = {"pg": 0, "redis": 0}
                pids = await _backends(state, app_name)
                pg0 = sum(_proc_cpu(p) for p in pids)
                cpu = time.process_time()
                with _counting(calls):
                    if prof:
                        prof.enable()
                    for b in bodies:
                        status = await post(url, b)
                        assert status in (200, 302), status
                    if prof:
                        prof.disable()
                cpu = time.process_time() - cpu
                pids2 = await _backends(state, app_name)
                # a backend opened meanwhile counts from zero
                pg = sum(_proc_cpu(p) for p in set(pids) | set(pids2)) - pg0
                n = len(bodies)
                return {
                    "requests": n,
                    "python_us": 1e6 * cpu / n,
                    "postgres_us": 1e6 * pg / n,
                    "pg_round_trips": calls["pg"] / n,
                    "redis_round_trips": calls["redis"] / n,
                }

            hook = "/api/streaming/hooks/nginx-rtmp"
            all_bodies = [body(k, f"c{i}") for i, (_, k) in enumerate(keys)]
            warm, rest = all_bodies[:50], all_bodies[50:]
            bare_bodies = all_bodies[: len(rest) // 2]
            await run(hook, warm, None)
            await run("/bench/bare", warm, None)
            # The pool holds the connections the warm-up opened; measure in two halves,
            # alternating with the bare route.
            half = len(rest) // 2
            prof_first = cProfile.Profile(time.process_time) if profile else None
            prof_repeat = cProfile.Profile(time.process_time) if profile_repeat else None
            sides: dict[str, list[dict[str, float]]] = {"first": [], "repeat": [], "bare": []}
            for part in (rest[:half], rest[half:]):
                sides["first"].append(await run(hook, part, prof_first))
                sides["bare"].append(await run("/bench/bare", bare_bodies[:half], None))
                sides["repeat"].append(await run(hook, part, prof_repeat))
            if prof_first and profile:
                prof_first.dump_stats(profile)
            if prof_repeat and profile_repeat:
                prof_repeat.dump_stats(profile_repeat)
            for side, runs in sides.items():
                result[side] = {
                    k: round(sum(r[k] for r in runs) / len(runs), 2)
                    for k in ("python_us", "postgres_us", "pg_round_trips", "redis_round_trips")
                }
            bare_us = result["bare"]["python_us"]
            for side in ("first", "repeat"):
                result[side]["over_bare_us"] = round(result[side]["python_us"] - bare_us, 1)
    finally:
        await loadgen.drop_database(db_url)
        await drop_redis_keys(f"{key_prefix}*", f"*{queue_prefix}*")
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1500)
    parser.add_argument("--profile", help="write a cProfile of the first publishes here")
    parser.add_argument("--profile-repeat", help="write a cProfile of the repeats here")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    with contextlib.redirect_stdout(sys.stderr):  # the app's log lines
        result = uvloop.run(_measure(args.events, args.profile, args.profile_repeat))
    out = {
        "benchmark": "cpu_on_publish",
        "events": args.events,
        **result,
        "load_average_1m_before_after": [round(load, 2), round(os.getloadavg()[0], 2)],
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
