"""Fan-out benchmark: N viewers on one event, senders at R msgs/s, BigfootLive vs socket.io.

    python -m bench.bench_fanout [--viewers 1000,5000,10000,20000] [--rate 20] [--duration 10]
                                 [--servers <cores>] [--clients 1] [--no-reference]
                                 [--warmup 3]

Both peers run as many server processes as there are cores (one port each; viewers are spread
round-robin) sharing one Redis: BigfootLive (uvicorn, uvloop, the hub in realtime/hub.py) and
the reference, Node.js socket.io + @socket.io/redis-adapter (bench/reference/socketio, installed
with `npm ci`). Viewers are bench/wsviewers.c, compiled here with `cc`: thousands of WebSocket
connections in one epoll loop per load-generator process, which parse every frame. (Python
viewers cost more CPU per frame than the servers spend sending it, so on a 2-core machine they,
not the server, set the latency.) Every delivered chat message is counted on every connection;
end-to-end latency (send time in the message body -> receipt) is measured on a sample of "probe"
connections. CPU (utime+stime from /proc) is read for the server processes and, separately, for
the load generators; RSS for the servers.

Differences the figures include: a BigfootLive message is validated, rate-limited, stored in the
database and acknowledged before it is published; the reference only broadcasts. BigfootLive
batches broadcasts of one short window (WS_BATCH_WINDOW_MS) into one frame; socket.io sends one
frame per message. Both run on the same machine as the load generators.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import loadgen
from bench.bench_api import REDIS_URL, server_env
from bench.fanout_report import ratios, targets
from bench.wsload import (
    ViewerProcess,
    build_viewers,
    proc_cpu_seconds,
    proc_cpu_split,
    proc_rss_bytes,
)
from bigfootlive.config import Settings

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "bench" / "reference" / "socketio"


def wait_http(port: int, within: float = 180.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server on {port} did not start")


@dataclass
class Peer:
    name: str
    kind: str
    procs: list[subprocess.Popen[bytes]]
    ports: list[int]
    path: str
    send: Any  # async callable(rate, duration, linger) -> sent count; lingers reading after
    acks_ms: list[float] = field(default_factory=list)  # send -> stored ack, where measured
    rss_baseline: int = 0  # the servers' RSS before the first level (after the warm-up)


SENDERS_PER_MSG_PER_SECOND = 1.0  # chat comes from many people: one connection per msg/s


def start_bigfoot(
    servers: int, workdir: Path, prefix: str, database_url: str
) -> tuple[Peer, dict[str, str]]:
    env = {
        **os.environ,
        **server_env(
            database_url,
            prefix,
            LOG_LEVEL="WARNING",
            CHAT_RATE_LIMIT="100000/second",
            WS_HEARTBEAT_SECONDS="20",
            WS_SEND_QUEUE_SIZE=os.environ.get("WS_SEND_QUEUE_SIZE", "256"),
            ARGON2_MEMORY_KIB="1024",
            ARGON2_TIME_COST="1",
            MAIL_OUTBOX_DIR=str(workdir / "outbox"),
        ),
    }
    from bigfootlive.migrations import upgrade_database

    asyncio.run(upgrade_database(env["DATABASE_URL"]))
    token_env = asyncio.run(_seed(env))
    # Seeded as the tables' owner; the servers as the application role (row-level security
    # applies, as in production).
    env["DATABASE_MIGRATION_URL"] = database_url
    env["DATABASE_URL"] = asyncio.run(loadgen.app_role_url(database_url))
    ports = [loadgen.free_port() for _ in range(servers)]
    procs = [
        subprocess.Popen(
            [
                str(Path(sys.executable).parent / "bigfootlive"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--backlog",
                "4096",
            ],
            env=env,
            cwd=workdir,
            stdout=sys.stderr,  # their log lines; stdout is the report's
        )
        for port in ports
    ]
    for port in ports:
        wait_http(port)
    event_id, token = asyncio.run(_login_and_create(ports[0], token_env))

    async def send(rate: float, duration: float, linger: float) -> int:
        import websockets

        senders = max(1, round(rate * SENDERS_PER_MSG_PER_SECOND))

        async def one_sender(i: int) -> int:
            async with websockets.connect(
                f"ws://127.0.0.1:{ports[i % len(ports)]}/ws/events/{event_id}",
                subprotocols=["bigfootlive.v1", f"bearer.{token}"],  # type: ignore[list-item]
                max_size=None,
            ) as ws:

                async def drain() -> None:
                    async for frame in ws:
                        if '"ack"' not in frame:
                            continue
                        for message in json.loads(frame):
                            if message.get("type") == "ack" and message.get("ref"):
                                acks.append((time.time_ns() - int(message["ref"])) / 1e6)

                def send_one() -> Any:
                    now = str(time.time_ns())
                    return ws.send(json.dumps({"type": "send", "body": now, "ref": now}))

                reader = asyncio.create_task(drain())
                await asyncio.sleep(i / rate)
                sent = await _paced(rate / senders, duration, send_one)
                await asyncio.sleep(linger)  # in-flight deliveries and acks land
                reader.cancel()
                return sent

        return sum(await asyncio.gather(*(one_sender(i) for i in range(senders))))

    acks: list[float] = []
    path = f"/ws/events/{event_id}"
    return Peer("bigfootlive", "bigfoot", procs, ports, path, send, acks), env


async def _seed(env: dict[str, str]) -> dict[str, str]:
    from bigfootlive.authz.roles import Role
    from bigfootlive.composition import AppState
    from bigfootlive.config import Settings
    from bigfootlive.identity import accounts
    from bigfootlive.tenants import service as tenants
    from bigfootlive.tenants.schemas import TenantSettings

    settings = Settings(
        database_url=env["DATABASE_URL"],
        jwt_secret=env["JWT_SECRET"],
        argon2_memory_kib=1024,
        argon2_time_cost=1,
    )
    state = AppState.build(settings)
    try:
        async with state.db.transaction() as session:
            tenant = await tenants.create_tenant(
                session, slug="bench", name="Bench", settings=TenantSettings(), email_domains=[]
            )
            await accounts.create_account(
                state,
                session,
                tenant=tenant,
                email="streamer@bench.example",
                display_name="Streamer",
                role=Role.STREAMER,
                password="bench-password-long-enough-1",
                email_verified=True,
            )
    finally:
        await state.close()
    return {
        "tenant": "bench",
        "email": "streamer@bench.example",
        "password": "bench-password-long-enough-1",
    }


async def _login_and_create(port: int, creds: dict[str, str]) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        login = await http.post("/api/auth/login", json=creds)
        login.raise_for_status()
        token = login.json()["access_token"]
        event = await http.post(
            "/api/events", json={"title": "Bench"}, headers={"Authorization": f"Bearer {token}"}
        )
        event.raise_for_status()
        return event.json()["id"], token


def start_socketio(servers: int, prefix: str) -> Peer:
    if not (REFERENCE / "node_modules").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=REFERENCE, check=True, stdout=sys.stderr
        )
    ports = [loadgen.free_port() for _ in range(servers)]
    procs = [
        subprocess.Popen(
            ["node", "server.js"],
            env={**os.environ, "PORT": str(port), "REDIS_URL": REDIS_URL, "REDIS_PREFIX": prefix},
            cwd=REFERENCE,
            stdout=subprocess.DEVNULL,
        )
        for port in ports
    ]
    for port in ports:
        wait_http(port, 60)
    path = "/socket.io/?EIO=4&transport=websocket&event=bench"

    async def send(rate: float, duration: float, linger: float) -> int:
        import websockets

        async with websockets.connect(f"ws://127.0.0.1:{ports[0]}{path}", max_size=None) as ws:
            assert str(await ws.recv()).startswith("0")  # Engine.IO open
            await ws.send("40")  # join the default namespace
            assert str(await ws.recv()).startswith("40")

            async def drain() -> None:
                async for frame in ws:
                    if frame == "2":  # Engine.IO ping
                        await ws.send("3")

            reader = asyncio.create_task(drain())
            sent = await _paced(rate, duration, lambda: ws.send(f'42["send","{time.time_ns()}"]'))
            reader.cancel()
            return sent

    return Peer("socket.io+redis-adapter", "sio", procs, ports, path, send)


async def _paced(rate: float, duration: float, send_one: Any) -> int:
    interval = 1.0 / rate
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < duration:
        await send_one()
        sent += 1
        next_at = start + sent * interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    return sent


def stop(peer: Peer) -> None:
    for proc in peer.procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in peer.procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


# --- one measurement -----------------------------------------------------------------------------


def measure(
    peer: Peer, binary: Path, viewers: int, rate: float, duration: float, clients: int
) -> dict[str, Any]:
    pids = [p.pid for p in peer.procs]
    rss_before = sum(proc_rss_bytes(pid) for pid in pids)
    connect_cpu_before = sum(proc_cpu_seconds(pid) for pid in pids)
    # One load generator holds at most ~15k sockets (the open-file limit is often 20k).
    clients = max(clients, -(-viewers // 15_000))
    probe_every = max(1, min(50, viewers // 20))
    per = [viewers // clients + (1 if i < viewers % clients else 0) for i in range(clients)]
    offsets = [sum(per[:i]) for i in range(clients)]
    connect_started = time.monotonic()
    loadgen = [
        ViewerProcess(binary, peer, count, probe_every, offset)
        for count, offset in zip(per, offsets, strict=True)
    ]
    ready = [viewer.read() for viewer in loadgen]
    connect_seconds = time.monotonic() - connect_started
    connect_cpu = sum(proc_cpu_seconds(pid) for pid in pids) - connect_cpu_before
    connected = sum(r["connected"] for r in ready)
    time.sleep(1.0)
    rss_after = sum(proc_rss_bytes(pid) for pid in pids)
    kernel_before = sum(proc_cpu_split(pid)[1] for pid in pids)
    cpu_before = sum(proc_cpu_seconds(pid) for pid in pids)
    client_cpu_before = sum(proc_cpu_seconds(v.proc.pid) for v in loadgen)
    for viewer in loadgen:
        viewer.tell("start")
    peer.acks_ms.clear()
    started, started_wall = time.monotonic(), time.time()
    sent = asyncio.run(peer.send(rate, duration, 1.0))
    elapsed = time.monotonic() - started
    cpu_after = sum(proc_cpu_seconds(pid) for pid in pids)
    kernel = sum(proc_cpu_split(pid)[1] for pid in pids) - kernel_before
    client_cpu_after = sum(proc_cpu_seconds(v.proc.pid) for v in loadgen)
    results = [viewer.finish() for viewer in loadgen]
    latencies = sorted(x for r in results for x in r["latencies_ms"])
    by_second: dict[int, list[float]] = {}
    for r in results:
        for latency, at in zip(r["latencies_ms"], r["sent_at"], strict=True):
            by_second.setdefault(int(at - started_wall), []).append(latency)
    timeline = [
        round(sorted(xs)[int(0.99 * (len(xs) - 1))], 1) for _, xs in sorted(by_second.items())
    ]
    delivered = sum(r["delivered"] for r in results)
    expected = sent * connected

    def pct(q: float) -> float | None:
        return _percentile(latencies, q)

    return {
        "viewers": viewers,
        "connected": connected,
        "connect_failures": sum(r["failed"] for r in ready),
        "connect_seconds": round(connect_seconds, 1),
        # Server CPU spent while the viewers connected, per 1,000: less sensitive than the wall
        # time to what else the machine runs.
        "connect_cpu_ms_per_1k": round(1000 * connect_cpu / max(1, connected) * 1000, 1),
        "dropped_during_run": sum(r["closed"] for r in results),
        "sent": sent,
        "send_rate": round(sent / duration, 1),
        "delivered": delivered,
        "delivery_ratio": round(delivered / expected, 4) if expected else None,
        "delivered_per_second": round(delivered / duration, 0),
        "latency_ms_p50": pct(0.50),
        "latency_ms_p99": pct(0.99),
        "latency_ms_mean": round(statistics.fmean(latencies), 1) if latencies else None,
        "latency_samples": len(latencies),
        "latency_ms_p99_each_second": timeline,
        "ack_ms_p50": _percentile(sorted(peer.acks_ms), 0.50),
        "ack_ms_p99": _percentile(sorted(peer.acks_ms), 0.99),
        "server_cpu_percent": round(100 * (cpu_after - cpu_before) / elapsed, 1),
        # the share of it in the kernel: the sockets' write() calls (loopback TCP, both ends'
        # protocol work) against the Python around them
        "server_cpu_kernel_share": round(kernel / max(cpu_after - cpu_before, 1e-9), 3),
        "load_generator_cpu_percent": round(
            100 * (client_cpu_after - client_cpu_before) / elapsed, 1
        ),
        "server_rss_mb": round(rss_after / 2**20, 1),
        # The servers' RSS growth since before the first level, per open connection: what the
        # open sockets take, whatever the earlier levels left. Growth over this level alone
        # (`rss_growth_this_level_kb`) counts only what the earlier, smaller levels' freed
        # memory could not hold, so it understates a socket's memory, and by how much depends
        # on when the collector freed those sockets (bench/README.md).
        "memory_per_connection_kb": round(
            (rss_after - (peer.rss_baseline or rss_before)) / max(1, connected) / 1024, 1
        ),
        "rss_growth_this_level_kb": round((rss_after - rss_before) / max(1, connected) / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--viewers", default="1000,5000,10000,20000")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--servers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--no-reference", action="store_true")
    # Seconds of chat sent to each peer before the first level (no viewers), so that the first
    # level measures a running server, not its first database round trips (0: none).
    parser.add_argument("--warmup", type=float, default=3.0)
    # The largest level once more at this rate (0: not): delivered/s compared where it is a
    # capacity, past the rate either peer keeps up with (bench/README.md, "Capacity").
    parser.add_argument("--capacity-rate", type=float, default=60.0)
    args = parser.parse_args()

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    levels = [int(v) for v in args.viewers.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    binary = build_viewers(workdir)
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    report: dict[str, Any] = {
        "benchmark": "fanout",
        "rate_msgs_per_second": args.rate,
        "duration_seconds": args.duration,
        "server_processes": args.servers,
        "ws_batch_window_ms": float(
            os.environ.get("WS_BATCH_WINDOW_MS")
            or Settings.model_fields["ws_batch_window_ms"].default
        ),
        "client_processes": args.clients,
        "warmup_seconds": args.warmup,
        "capacity_rate_msgs_per_second": args.capacity_rate,
        "cores": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "results": {},
    }
    database_url = asyncio.run(loadgen.create_database("bench_fanout"))
    peers: list[Peer] = []
    try:
        # Both peers are up for the whole run and each level is measured for one, then at once
        # for the other: on a shared machine both see the same background load.
        peers.append(start_bigfoot(args.servers, workdir, prefix, database_url)[0])
        if not args.no_reference:
            peers.append(start_socketio(args.servers, prefix + "sio"))
        for peer in peers:
            report["results"][peer.name] = []
            if args.warmup > 0:
                asyncio.run(peer.send(args.rate, args.warmup, 0.5))
            peer.rss_baseline = sum(proc_rss_bytes(p.pid) for p in peer.procs)
        for n in levels:
            for peer in peers:
                row = measure(peer, binary, n, args.rate, args.duration, args.clients)
                row["load_average"] = os.getloadavg()
                print(json.dumps({"peer": peer.name, **row}), file=sys.stderr, flush=True)
                report["results"][peer.name].append(row)
        if args.capacity_rate > 0 and levels:
            report["capacity"] = {}
            for peer in peers:
                row = measure(peer, binary, max(levels), args.capacity_rate, args.duration,
                              args.clients)  # fmt: skip
                row["load_average"] = os.getloadavg()
                print(json.dumps({"peer": peer.name, "capacity": True, **row}), file=sys.stderr)
                report["capacity"][peer.name] = row
        if "socket.io+redis-adapter" in report["results"]:
            report["bigfootlive_vs_reference"] = [
                ratios(ours, theirs)
                for ours, theirs in zip(
                    report["results"]["bigfootlive"],
                    report["results"]["socket.io+redis-adapter"],
                    strict=True,
                )
            ]
        report["targets"] = targets(report)
        report["load_average_at_end"] = os.getloadavg()
        print(json.dumps(report, indent=2))
    finally:
        for peer in peers:
            stop(peer)
        shutil.rmtree(workdir, ignore_errors=True)
        with contextlib.suppress(Exception):
            asyncio.run(loadgen.drop_database(database_url))
        with contextlib.suppress(Exception):
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=prefix + "*", count=1000))
            if keys:
                client.delete(*keys)


if __name__ == "__main__":
    main()
