"""Soak: bounded mixed traffic for `--minutes`, resource figures sampled over time, no growth.

    python -m bench.bench_soak [--minutes 20] [--interval 10] [--warmup 60] [--tolerance 1.0]

Starts the real server (`bigfootlive serve`, one uvicorn worker, as bench_api does) on a fresh
PostgreSQL database and a Redis key prefix of its own, seeds one tenant (an admin, a streamer,
viewers, an API key for the media-server callbacks), creates a live event through the API (armed:
its container starts; an nginx-rtmp `publish` callback puts it live) and then, for `--minutes`,
runs at fixed rates: sign-ins, authenticated reads, chat over WebSockets fanned out to viewer
connections (a few of which reconnect every interval), player beacons and media-server
callbacks. Every `--interval` seconds it samples the server's RSS and open file descriptors (the
process and its children, /proc/<pid>/fd), the database's connections (pg_stat_activity) and
Redis `used_memory` (plus the number of this run's keys, reported but not judged: see
`soak_metrics.INFORMATIONAL`). It prints one JSON document: the series, a least-squares slope per
metric (per minute, on its steady-state window: after `--warmup`, and for the Redis series after
the longest TTL of the keys the load makes, from the server's settings; `windows` in the JSON),
and a verdict: no growth trend when every slope is within `--tolerance` % of the metric's mean
per minute. The accounts stay signed in as a client keeps them (`soak_client`: tokens refreshed
before they expire). `make bench` runs it for 3 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import loadgen, summary
from bench.loadgen import Uvicorn
from bench.soak_client import USERS, Accounts, close_code, credentials, seed
from bench.soak_metrics import (
    INFORMATIONAL,
    METRICS,
    TTL_BOUNDED,
    judge,
    redis_key_kinds,
    sample,
    slope_per_minute,
    trend,
    ttl_warmup,
    verdict,
)

__all__ = ["main", "slope_per_minute", "trend", "verdict"]

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
VIEWERS = 40  # chat WebSocket viewers (authenticated users)

# Requests per second for each kind of traffic (bounded: a soak, not a stress test).
RATES = {"sign_in": 0.5, "read": 20.0, "chat": 4.0, "beacon": 10.0, "callback": 1.0}
RECONNECT_PER_INTERVAL = 4  # viewer connections closed and reopened at each sample


@dataclass
class Counters:
    ok: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    chat_received: int = 0  # chat messages delivered to viewers
    reconnects: int = 0
    ws_closed: dict[str, int] = field(default_factory=dict)  # close code -> viewers
    failed_by_status: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> status

    def count(self, kind: str, good: bool, status: int | str | None = None) -> None:
        bucket = self.ok if good else self.failed
        bucket[kind] = bucket.get(kind, 0) + 1
        if not good:
            codes = self.failed_by_status.setdefault(kind, {})
            codes[str(status)] = codes.get(str(status), 0) + 1


# ---------------------------------------------------------------- seed and traffic


def _callback(call: str, key: str) -> dict[str, str]:
    return {
        "app": "ingest", "flashver": "FMLE/3.0", "tcurl": "rtmp://127.0.0.1/ingest",
        "addr": "127.0.0.1", "clientid": "soak-1", "call": call, "name": key, "type": "live",
    }  # fmt: skip


async def _paced(rate: float, until: float, action: Any) -> None:
    """Call `action(n)` `rate` times a second until the monotonic deadline `until`."""
    started = time.monotonic()
    n = 0
    while time.monotonic() < until:
        await action(n)
        n += 1
        delay = started + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


class Soak:
    def __init__(self, base_url: str, counters: Counters) -> None:
        self.base_url = base_url
        self.api_key = ""
        self.counters = counters
        self.http = httpx.AsyncClient(base_url=base_url, timeout=30)
        # every account's token pair, refreshed before it expires (`soak_client`)
        self.accounts = Accounts(self.http, credentials, counters.count)
        self.event_id = ""
        self.stream_key = ""
        self.viewers: list[asyncio.Task[None]] = []

    async def setup(self) -> dict[str, Any]:
        for i in range(USERS + 2):
            await self.accounts.sign_in(i)
        admin = {"Authorization": f"Bearer {await self.accounts.access(0)}"}
        key = await self.http.post("/api/api-keys", json={"name": "soak"}, headers=admin)
        key.raise_for_status()
        self.api_key = key.json()["key"]  # the media server's credential for the callbacks
        streamer = {"Authorization": f"Bearer {await self.accounts.access(1)}"}
        created = await self.http.post("/api/events", json={"title": "Soak"}, headers=streamer)
        created.raise_for_status()
        self.event_id = created.json()["id"]
        self.stream_key = created.json()["ingest"]["stream_key"]
        (
            await self.http.post(f"/api/events/{self.event_id}/start", headers=streamer)
        ).raise_for_status()
        published = await self._hook("publish")
        began = time.monotonic()
        container = await self.container()
        while container.get("state") != "running" and time.monotonic() - began < 60:
            await asyncio.sleep(0.5)
            container = await self.container()
        return {
            "event_id": self.event_id,
            "publish_status": published,
            "container_at_start": container,
            "seconds_to_running_container": round(time.monotonic() - began, 2),
        }

    async def container(self) -> dict[str, Any]:
        """The live event's container as the admin's `/api/containers/stats` shows it."""
        stats = (await self.accounts.get(0, "/api/containers/stats")).json()
        for item in stats.get("items", []):
            if item["event_id"] == self.event_id:
                return {k: item[k] for k in ("state", "runtime", "restarts", "event_status")}
        return {}

    async def _hook(self, call: str) -> int:
        response = await self.http.post(
            "/api/streaming/hooks/nginx-rtmp",
            data=_callback(call, self.stream_key),
            headers={"X-API-Key": self.api_key},
        )
        return response.status_code

    def _ws(self, token: str) -> Any:
        import websockets

        url = self.base_url.replace("http://", "ws://") + f"/ws/events/{self.event_id}"
        return websockets.connect(
            url, subprotocols=["bigfootlive.v1", f"bearer.{token}"],  # type: ignore[list-item]
            max_size=None, open_timeout=30,
        )  # fmt: skip

    async def _viewer(self, i: int) -> None:
        """A viewer as the player runs it (`chat.mjs`): counts chat messages, answers the server's
        pings, and when the server closes its socket connects again after a back-off (its token
        refreshed first after a 4401; not after a ban or an unknown event)."""
        attempts = 0
        while True:
            connected = False
            token = await self.accounts.access(i)
            try:
                async with self._ws(token) as ws:
                    connected = True
                    attempts = 0
                    self.counters.count("ws_connect", True)
                    async for frame in ws:
                        text = frame if isinstance(frame, str) else frame.decode()
                        compact = text.replace(" ", "")
                        self.counters.chat_received += compact.count('"type":"message"')
                        if '"type":"ping"' in compact:
                            await ws.send('{"type":"pong"}')
                code = ws.close_code  # the server closed it cleanly
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # a refused connection, or one the server closed (close code in `ws_closed`)
                code = close_code(exc)
                self.counters.count("ws_connect" if not connected else "ws_dropped", False, code)
            self.counters.ws_closed[str(code)] = self.counters.ws_closed.get(str(code), 0) + 1
            if code in (4403, 4404, 4405, 4406, 4411):
                return
            if code == 4401:
                await self.accounts.refresh(i, token)
            attempts += 1
            await asyncio.sleep(min(30.0, 0.5 * 2 ** min(attempts, 6)))

    def start_viewers(self) -> None:
        for i in range(VIEWERS):
            self.viewers.append(asyncio.create_task(self._viewer(2 + i)))

    def reconnect_some(self, round_: int) -> None:
        for k in range(RECONNECT_PER_INTERVAL):
            i = (round_ * RECONNECT_PER_INTERVAL + k) % VIEWERS
            self.viewers[i].cancel()
            self.viewers[i] = asyncio.create_task(self._viewer(2 + i))
            self.counters.reconnects += 1

    async def _request(self, kind: str, coro: Any) -> None:
        try:
            response = await coro
            self.counters.count(kind, response.status_code < 400, response.status_code)
        except httpx.HTTPError as exc:
            self.counters.count(kind, False, type(exc).__name__)

    async def traffic(self, until: float) -> None:
        reads = ("/api/auth/me", "/api/events", f"/api/events/{self.event_id}")

        async def sign_in(n: int) -> None:
            # someone signing in (again): a session of its own, its tokens not kept
            body = credentials(2 + n % USERS)
            await self._request("sign_in", self.http.post("/api/auth/login", json=body))

        async def read(n: int) -> None:
            await self._request("read", self.accounts.get(n % (USERS + 2), reads[n % 3]))

        async def beacon(n: int) -> None:
            body = {
                "viewer_id": f"viewer-{n % 500:03d}",
                "beacons": [{"type": "heartbeat", "watched_ms": 10_000, "bitrate_kbps": 2500}],
            }
            url = f"/api/analytics/events/{self.event_id}/beacons"
            await self._request("beacon", self.http.post(url, json=body))

        async def callback(n: int) -> None:
            # the encoder stays up (update_publish); every minute it drops and comes back
            call = (
                "publish_done" if n % 60 == 58 else "publish" if n % 60 == 59 else "update_publish"
            )
            status = await self._hook(call)
            self.counters.count("callback", status < 400, status)

        sent = 0

        async def chat() -> None:
            # the streamer's socket; connected again (token refreshed) if the server closes it
            nonlocal sent
            while time.monotonic() < until:
                token = await self.accounts.access(1)
                try:
                    async with self._ws(token) as ws:
                        drain = asyncio.create_task(_drain(ws))

                        async def send(_: int) -> None:
                            nonlocal sent
                            body = {"type": "send", "body": f"soak {sent}", "ref": str(sent)}
                            await ws.send(json.dumps(body))
                            sent += 1
                            self.counters.count("chat_sent", True)

                        await _paced(RATES["chat"], until, send)
                        drain.cancel()
                except Exception as exc:
                    code = close_code(exc)
                    self.counters.count("chat_sent", False, code)
                    if code == 4401:
                        await self.accounts.refresh(1, token)
                    await asyncio.sleep(1.0)

        await asyncio.gather(
            _paced(RATES["sign_in"], until, sign_in),
            _paced(RATES["read"], until, read),
            _paced(RATES["beacon"], until, beacon),
            _paced(RATES["callback"], until, callback),
            chat(),
        )

    async def close(self) -> None:
        for task in self.viewers:
            task.cancel()
        await asyncio.gather(*self.viewers, return_exceptions=True)
        await self.http.aclose()


async def _drain(ws: Any) -> None:
    with contextlib.suppress(Exception):  # a closed socket: the sender's next send says so
        async for _ in ws:
            pass


async def soak(server: Uvicorn, db_name: str, prefix: str, args: Any) -> dict[str, Any]:
    counters = Counters()
    run = Soak(server.base_url, counters)
    try:
        setup = await run.setup()
        run.start_viewers()
        started = time.monotonic()
        until = started + args.minutes * 60
        traffic = asyncio.create_task(run.traffic(until))
        samples: list[dict[str, float]] = []
        loads: list[float] = []
        round_ = 0
        while True:
            now = time.monotonic()
            figures = await sample(server.pid, db_name, prefix, REDIS_URL)
            load = os.getloadavg()[0]
            loads.append(load)
            samples.append({"t_s": round(now - started, 1), **figures, "load_average_1m": load})
            print(json.dumps(samples[-1]), file=sys.stderr, flush=True)
            if now >= until:
                break
            run.reconnect_some(round_)
            round_ += 1
            await asyncio.sleep(min(args.interval, max(0.0, until - time.monotonic())))
        await traffic
        elapsed = time.monotonic() - started
        setup["container_at_end"] = await run.container()
        kinds = await redis_key_kinds(prefix, REDIS_URL)
    finally:
        await run.close()
    return {
        "setup": setup,
        "samples": samples,
        "redis_key_kinds": kinds,
        "loads": loads,
        "elapsed_s": elapsed,
        "counters": counters,
    }


def _report(
    result: dict[str, Any], args: Any, load_before: float, ttl: tuple[float, str]
) -> dict[str, Any]:
    samples = result["samples"]
    # each metric judged on its steady state: after `--warmup`, and the Redis series only after
    # the longest TTL of the keys the load makes (they fill up until then: `ttl_warmup`)
    starts = {
        m: max(args.warmup, ttl[0]) if m in TTL_BOUNDED else args.warmup
        for m in (*METRICS, *INFORMATIONAL)
    }
    judged = judge(samples, {m: starts[m] for m in METRICS}, args.tolerance)
    info = judge(samples, {m: starts[m] for m in INFORMATIONAL}, args.tolerance)
    informational = info["trends"]
    judged["windows"]["ttl_warmup"] = {"seconds": ttl[0], "setting": ttl[1]}
    load = sum(result["loads"]) / len(result["loads"])
    counters: Counters = result["counters"]
    elapsed = result["elapsed_s"]
    rates = {k: round(v / elapsed, 2) for k, v in counters.ok.items()}
    targets = []
    for metric in METRICS:
        t = judged["trends"][metric]
        targets.append(
            summary.target(
                f"soak {metric} slope (% of mean per minute, {args.minutes:g} min)",
                None if metric in judged["too_short"] else t["slope_pct_of_mean_per_min"],
                args.tolerance,
                unit="%",
                better="lower",
                load_average=load,
                detail=f"{t['slope_per_min']:+g}/min around {t['mean']:g}",
            )
        )
    return {
        "benchmark": "soak",
        "config": {
            "minutes": args.minutes,
            "interval_s": args.interval,
            "warmup_s": args.warmup,
            "tolerance_pct_of_mean_per_min": args.tolerance,
            "uvicorn_workers": 1,
            "rates_per_s": RATES,
            "chat_viewers": VIEWERS,
            "viewer_reconnects_per_interval": RECONNECT_PER_INTERVAL,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1m_before": round(load_before, 2),
            "load_average_1m_mean": round(load, 2),
            "load_average_1m_after": round(os.getloadavg()[0], 2),
        },
        "live_event": result["setup"],
        "traffic": {
            "ok": counters.ok,
            "failed": counters.failed,
            "ok_per_s": rates,
            "chat_messages_delivered": counters.chat_received,
            "viewer_reconnects": counters.reconnects,
            "failed_by_status": counters.failed_by_status,
            "viewer_sockets_lost_by_close_code": counters.ws_closed,
        },
        "series": samples,
        **judged,
        "informational_trends": informational,
        "redis_key_kinds": result["redis_key_kinds"],
        "targets": targets,
        "elapsed_s": round(elapsed, 1),
    }


def run(args: Any) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    prefix = f"bench:{uuid.uuid4().hex[:10]}:"
    database_url = asyncio.run(loadgen.create_database("bfl_soak"))
    db_name = database_url.rsplit("/", 1)[1]
    server: Uvicorn | None = None
    succeeded = False
    try:
        from bigfootlive.migrations import upgrade_database

        asyncio.run(upgrade_database(database_url))
        jwt_secret = secrets.token_urlsafe(48)
        asyncio.run(seed(database_url, jwt_secret))
        env = {
            "NODE_ENV": "production",
            "REDIS_URL": REDIS_URL,
            "REDIS_KEY_PREFIX": prefix,
            "JOBS_QUEUE_PREFIX": f"soak{uuid.uuid4().hex[:8]}",
            # A deployment runs a worker for the jobs the API sends (the analytics roll-up, one
            # a second here): without one, the queue grew in Redis for the whole run (~2.8 KB a
            # job, 1,200 after 25 minutes), which the Redis memory slope took for a leak.
            # Here it runs in the server process (as bench_beacons does), so its threads, memory
            # and connections are measured with the server's.
            "JOBS_INPROCESS_WORKER": "true",
            "JWT_SECRET": jwt_secret,
            "AUTO_MIGRATE": "false",
            "ARGON2_MEMORY_KIB": "1024",
            "ARGON2_TIME_COST": "1",
            "LOGIN_RATE_LIMIT": "1000000/minute",
            "CHAT_RATE_LIMIT": "100000/second",
            "ANALYTICS_BEACON_RATE_LIMIT": "100000/minute",
            "ANALYTICS_BEACON_IP_RATE_LIMIT": "1000000/minute",
            "MAIL_OUTBOX_DIR": str(workdir / "outbox"),
            "BENCH_FIXTURE_DIR": str(workdir),
            # Seeded as the tables' owner; the server as the application role, as production
            # requires (row-level security applies to it).
            "DATABASE_URL": asyncio.run(loadgen.app_role_url(database_url)),
            "DATABASE_MIGRATION_URL": database_url,
        }
        server = Uvicorn(
            "bench.server:create_bench_app", env=env, workers=1, log=workdir / "server.log"
        )
        server.wait_ready()
        result = asyncio.run(soak(server, db_name, prefix, args))
        server.stop()
        server = None
        succeeded = True
        return _report(result, args, load_before, ttl_warmup(_settings(env)))
    finally:
        if server is not None:
            server.stop()
        asyncio.run(loadgen.drop_database(database_url))
        asyncio.run(loadgen.delete_redis_prefix(REDIS_URL, prefix))
        if succeeded:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"server log kept in {workdir}", file=sys.stderr)


def _settings(env: dict[str, str]) -> Any:
    """The server's settings: its environment (this one plus `env`, as `Uvicorn` passes it)."""
    from bigfootlive.config import Settings

    fields = Settings.model_fields
    given: dict[str, Any] = {k.lower(): v for k, v in env.items() if k.lower() in fields}
    return Settings(**given)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20, help="length of the soak")
    parser.add_argument("--interval", type=float, default=10, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=60, help="seconds left out of the slopes")
    parser.add_argument(
        "--tolerance", type=float, default=1.0, help="max slope, %% of the mean per minute"
    )
    args = parser.parse_args(argv)
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
