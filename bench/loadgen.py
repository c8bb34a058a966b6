"""Shared benchmark helpers: `wrk` runs with a Lua script, and a uvicorn server on loopback.

wrk reports latency through a Lua `done()` hook that prints one JSON line, so no text parsing of
its human-readable summary is needed. Latencies are in microseconds inside wrk; we report ms.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvloop

_DONE_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d,"non_2xx":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


T = TypeVar("T")


def lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal for ASCII


def lua_list(values: Sequence[str]) -> str:
    return "{" + ", ".join(lua_string(v) for v in values) + "}"


def get_script(path: str, tokens: Sequence[str]) -> str:
    """GET `path`, each request with the next bearer token from `tokens` (round robin)."""
    return (
        f"""
local tokens = {lua_list(tokens)}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", {lua_string(path)},
    {{["Authorization"] = "Bearer " .. tokens[(i % #tokens) + 1]}})
end
"""
        + _DONE_LUA
    )


def post_json_script(path: str, bodies: Sequence[str]) -> str:
    """POST each JSON body of `bodies` in turn to `path`."""
    return (
        f"""
local bodies = {lua_list(bodies)}
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", {lua_string(path)},
    {{["Content-Type"] = "application/json"}}, bodies[(i % #bodies) + 1])
end
"""
        + _DONE_LUA
    )


def plain_script() -> str:
    return _DONE_LUA


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def figures(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "requests_per_s": round(self.rps, 1),
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "non_2xx": self.non_2xx,
            "socket_errors": self.socket_errors,
        }


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        sys.exit("wrk is not installed: apt-get install wrk (in scripts/packages/test.txt)")
    return found


class Wrk:
    """One wrk run in the background; `result()` waits for it and parses the JSON line."""

    def __init__(
        self,
        url: str,
        script: str,
        *,
        seconds: float,
        connections: int,
        threads: int = 1,
        timeout_s: int = 10,
    ) -> None:
        self._script = tempfile.NamedTemporaryFile(
            "w", suffix=".lua", prefix="bench-", delete=False
        )
        self._script.write(script)
        self._script.close()
        self._proc = subprocess.Popen(
            [
                wrk_binary(),
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                f"--timeout={timeout_s}s",
                "-s",
                self._script.name,
                url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def result(self) -> WrkResult:
        out, err = self._proc.communicate()
        Path(self._script.name).unlink(missing_ok=True)
        for line in out.splitlines():
            if line.startswith("BENCH_JSON "):
                raw = json.loads(line.removeprefix("BENCH_JSON "))
                return WrkResult(
                    requests=raw["requests"],
                    seconds=raw["duration_us"] / 1e6,
                    non_2xx=raw["non_2xx"],
                    socket_errors=raw["connect_errors"]
                    + raw["read_errors"]
                    + raw["write_errors"]
                    + raw["timeouts"],
                    p50_ms=round(raw["p50_us"] / 1000, 2),
                    p90_ms=round(raw["p90_us"] / 1000, 2),
                    p99_ms=round(raw["p99_us"] / 1000, 2),
                    max_ms=round(raw["max_us"] / 1000, 2),
                )
        raise RuntimeError(f"wrk gave no result (exit {self._proc.returncode}): {out}\n{err}")


def run_wrk(url: str, script: str, *, seconds: float, connections: int) -> WrkResult:
    return Wrk(url, script, seconds=seconds, connections=connections).result()


class Prober:
    """A health checker in a background thread: `GET url` at a fixed rate on one keep-alive
    connection, as a load balancer or orchestrator probes; `result()` waits for the end and
    gives the response times as a `WrkResult`. (wrk as fast as it can go is a load of its own:
    2,500 requests/s of /health took the CPU of a core from the server under test.)"""

    def __init__(self, url: str, *, per_second: float, seconds: float) -> None:
        self.url, self.per_second, self.seconds = url, per_second, seconds
        self._times: list[float] = []
        self._failed = 0
        self._non_2xx = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        interval = 1.0 / self.per_second
        with httpx.Client(timeout=10) as client:
            start = time.perf_counter()
            for n in range(int(self.seconds * self.per_second)):
                delay = start + n * interval - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                sent = time.perf_counter()
                try:
                    answer = client.get(self.url)
                except httpx.HTTPError:
                    self._failed += 1
                    continue
                self._times.append(time.perf_counter() - sent)
                if not 200 <= answer.status_code < 300:
                    self._non_2xx += 1
        self._elapsed = time.perf_counter() - start

    def result(self) -> WrkResult:
        self._thread.join()
        ms = sorted(1000 * t for t in self._times) or [0.0]

        def at(q: float) -> float:
            return round(ms[min(len(ms) - 1, int(q * len(ms)))], 2)

        return WrkResult(
            requests=len(self._times),
            seconds=self._elapsed,
            non_2xx=self._non_2xx,
            socket_errors=self._failed,
            p50_ms=at(0.50),
            p90_ms=at(0.90),
            p99_ms=at(0.99),
            max_ms=round(ms[-1], 2),
        )


def run_served(main: Coroutine[Any, Any, T]) -> T:
    """Run a benchmark whose server runs in this process on the event loop `bigfootlive serve`
    uses (uvloop, `serving.uvicorn_options`): `uvicorn.Server.serve()` takes the running loop
    as it is, and `asyncio.run` would give it asyncio's own."""
    return uvloop.run(main)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


PG_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


async def create_database(prefix: str = "bfl_bench") -> str:
    """A fresh PostgreSQL database (random name); returns its SQLAlchemy asyncpg URL."""
    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


# The role the benchmarked server connects as, like a production application role (README,
# "Row-level security"): no superuser, no BYPASSRLS, so the policies apply and cost what they
# cost in production (and `NODE_ENV=production` accepts it). The tables belong to the admin role
# that migrated them; seeding goes through that role too.
APP_ROLE = "bfl_bench_app"


async def app_role_url(url: str) -> str:
    """`url` (a migrated database, admin role) as the application role, privileges granted."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        try:
            await conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS")
        except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
            pass  # made by an earlier run (roles belong to the whole cluster)
        await conn.execute(
            f"GRANT USAGE ON SCHEMA public TO {APP_ROLE};"
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE};"
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}"
        )
    finally:
        await conn.close()
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{APP_ROLE}@{rest.split('@', 1)[1]}"


def subject_of(user: Any, tenant: Any, claims: Any) -> Any:
    """An `AuthSubject` for a seeded user (what authentication builds from the principal)."""
    import datetime as dt

    from sqlalchemy import inspect

    from bigfootlive.authz.subject import AuthSubject, Principal

    row = {column.key: getattr(user, column.key) for column in inspect(user).mapper.column_attrs}
    principal = Principal(
        user_row=row,
        tenant_slug=tenant.slug,
        tenant_active=True,
        session_expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
    )
    return AuthSubject(principal, claims)


async def seed_accounts(
    settings: Any,
    *,
    slug: str,
    name: str,
    password: str,
    emails: Sequence[str],
    roles: Sequence[str] | None = None,
) -> None:
    """One tenant and an account per email (verified, `roles[i]` or viewer), created one second
    apart in list order; one argon2 hash of `password` shared by all (hashing 1,000 is slow)."""
    import datetime as dt

    from bigfootlive.composition import AppState
    from bigfootlive.models import User
    from bigfootlive.tenants import service as tenants

    state = AppState.build(settings)
    try:
        password_hash = await state.passwords.hash(password)
        now = dt.datetime.now(dt.UTC)
        async with state.db.transaction() as session:
            tenant = await tenants.create_tenant(session, slug=slug, name=name)
            session.add_all(
                User(
                    id=uuid.uuid4(),
                    tenant_id=tenant.id,
                    email=email,
                    display_name=f"{name} User {i}",
                    role=roles[i] if roles is not None else "viewer",
                    password_hash=password_hash,
                    email_verified_at=now,
                    created_at=now - dt.timedelta(seconds=i),
                    updated_at=now,
                )
                for i, email in enumerate(emails)
            )
        if state.db.engine.dialect.name == "postgresql":
            # Statistics, as autovacuum keeps them on a live database: right after the seed
            # the planner would take the tables for empty (a member list read every member
            # of the tenant through `ix_users_tenant_id` and sorted them).
            async with state.db.engine.begin() as conn:
                await conn.exec_driver_sql("ANALYZE users, tenants")
    finally:
        await state.close()


async def delete_redis_prefix(url: str, prefix: str) -> None:
    """Delete every key under `prefix` (a run's own keys)."""
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start : start + 1000])
    finally:
        await client.aclose()


async def drop_database(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()


class Uvicorn:
    """`bigfootlive serve --app <factory> --factory` in a subprocess: the server exactly as
    production runs it, serving the benchmark's app factory.

    The server runs in its own process group and is stopped by that group's id.
    """

    def __init__(self, factory: str, *, env: Mapping[str, str], workers: int, log: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("wb")
        self._proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "bigfootlive"),
                "serve",
                f"--app={factory}",
                "--factory",
                "--host=127.0.0.1",
                f"--port={self.port}",
                f"--workers={workers}",
            ],
            # The factory's module (bench.server) is imported from the repository root.
            # no managed nginx: the benchmarks measure the API (bench_media runs nginx itself)
            env={
                **os.environ,
                "MEDIA_SERVER_MODE": "none",
                **env,
                # (then BENCH_PYTHONPATH: another checkout's src/ to measure it with this bench)
                "PYTHONPATH": os.pathsep.join(
                    p
                    for p in (
                        str(Path(__file__).resolve().parents[1]),
                        os.environ.get("BENCH_PYTHONPATH", ""),
                    )
                    if p
                ),
            },
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, path: str = "/health", within: float = 120.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                raise RuntimeError(f"server exited with {code}; see {self._log.name}")
            try:
                if httpx.get(self.base_url + path, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {within}s; see {self._log.name}")

    @property
    def pid(self) -> int:
        """The server's root process (`bigfootlive serve`); workers are its children."""
        return self._proc.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server and its worker processes so far."""
        import psutil

        total = 0.0
        root = psutil.Process(self._proc.pid)
        for proc in [root, *root.children(recursive=True)]:
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    def hashing_cpu_seconds(self, nice: int) -> dict[int, float]:
        """User + system CPU time so far of each worker's threads at `nice` (the password
        hashing pool's threads run at PASSWORD_HASH_NICE, the rest at 0), one figure per worker
        (Linux: /proc/<pid>/task/<tid>/stat), by process id."""
        import psutil

        tick = os.sysconf("SC_CLK_TCK")
        per_worker = {}
        for proc in psutil.Process(self._proc.pid).children(recursive=True):
            seconds = 0.0
            try:
                tasks = os.listdir(f"/proc/{proc.pid}/task")
            except OSError:
                continue
            for tid in tasks:
                try:
                    with open(f"/proc/{proc.pid}/task/{tid}/stat") as stat:
                        fields = stat.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                # after the command: state (3), ... utime (14), stime (15), ..., nice (19)
                if int(fields[16]) == nice:
                    seconds += (int(fields[11]) + int(fields[12])) / tick
            per_worker[proc.pid] = seconds
        return per_worker

    def stop(self) -> None:
        if self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        self._log.close()
