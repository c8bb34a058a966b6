"""Beacon ingest: beacons/s for one API process and client-side latency percentiles.

    python -m bench.bench_beacons [--requests 4000] [--concurrency 32] [--batch 1] [--redis]

Starts `bigfootlive serve` (one uvicorn process) on a free loopback port with a fresh SQLite
database (and, with --redis, the Redis on 127.0.0.1:6379 for counters and the job broker),
creates a tenant, a streamer and an armed public event through the CLI and the API, then posts
heartbeat batches from many distinct viewers. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench import loadgen

PASSWORD = "plausible-tundra-velvet-42"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    subprocess.run(
        [sys.executable, "-m", "bigfootlive.cli", *args],
        env=env,
        input=stdin,
        text=True,
        check=True,
        capture_output=True,
    )


def start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bigfootlive.cli", "serve", "--port", str(port)],
        env={"MEDIA_SERVER_MODE": "none", **env},  # the API is measured, not nginx
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_ready(base: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            try:
                if (await http.get(f"{base}/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the server did not start")


async def load(base: str, event_id: str, requests: int, concurrency: int, batch: int) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(http: httpx.AsyncClient) -> None:
        for n in counter:
            body = {
                "viewer_id": f"viewer-{n % 5000:05d}",
                "beacons": [{"type": "heartbeat", "watched_ms": 10_000, "bitrate_kbps": 2500}]
                * batch,
            }
            started = time.perf_counter()
            response = await http.post(f"{base}/api/analytics/events/{event_id}/beacons", json=body)
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        began = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    accepted = statuses.get(202, 0)
    return {
        "requests": requests,
        "concurrency": concurrency,
        "beacons_per_request": batch,
        "statuses": statuses,
        "requests_per_s": round(requests / elapsed),
        "beacons_per_s": round(accepted * batch / elapsed),
        "latency_ms_p50": round(percentile(latencies, 0.5), 2),
        "latency_ms_p99": round(percentile(latencies, 0.99), 2),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--redis", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = loadgen.free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}",
            "AUTO_MIGRATE": "true",
            "PUBLIC_BASE_URL": base,
            "LOG_LEVEL": "WARNING",
            "MAIL_OUTBOX_DIR": str(Path(tmp) / "outbox"),
            "ANALYTICS_BEACON_RATE_LIMIT": "100000/minute",
            "ANALYTICS_BEACON_IP_RATE_LIMIT": "1000000/minute",
            "JOBS_SCHEDULER": "false",
        }
        if args.redis:
            env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
            env["REDIS_KEY_PREFIX"] = f"bench:{uuid.uuid4().hex[:8]}:"
            env["JOBS_INPROCESS_WORKER"] = "true"
            env["JOBS_QUEUE_PREFIX"] = f"bench{uuid.uuid4().hex[:8]}"
        cli(env, "migrate")
        cli(env, "tenant", "create", "--slug", "bench", "--name", "Bench")
        cli(
            env,
            "user",
            "create",
            "--tenant",
            "bench",
            "--email",
            "streamer@example.com",
            "--name",
            "Streamer",
            "--role",
            "streamer",
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
        server = start_server(env, port)
        try:
            await wait_ready(base)
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                login = await http.post(
                    "/api/auth/login",
                    json={"tenant": "bench", "email": "streamer@example.com", "password": PASSWORD},
                )
                headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
                event = (
                    await http.post("/api/events", json={"title": "Bench"}, headers=headers)
                ).json()
                await http.post(f"/api/events/{event['id']}/start", headers=headers)
            await load(base, event["id"], 200, args.concurrency, args.batch)  # warm-up
            result = await load(base, event["id"], args.requests, args.concurrency, args.batch)
        finally:
            server.terminate()
            server.wait(timeout=30)
    json.dump(
        {
            "benchmark": "beacons",
            "server": "1 uvicorn process (uvloop, httptools)",
            "backend": "sqlite + Redis" if args.redis else "sqlite + in-process",
            "result": result,
        },
        sys.stdout,
        indent=2,
    )
    print()


if __name__ == "__main__":
    asyncio.run(main())
