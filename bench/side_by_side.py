"""A route against its bare peer on the same server: wrk runs of each in alternating rounds
(`side_by_side`), with the server's and PostgreSQL's CPU per request, and their figures as the
benchmarks print them (`pair_figures`)."""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from typing import Any

from bench.loadgen import Uvicorn, WrkResult, run_wrk
from bench.pgcpu import DatabaseCpu


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


@dataclass(frozen=True)
class Pair:
    """One route against its bare peer, measured in alternating rounds."""

    real: WrkResult
    bare: WrkResult
    round_ratios: list[float | None]
    load_average: float
    cpu_ms_per_request: dict[str, float | None]  # the server processes' CPU, per request
    db_cpu_ms_per_request: float | None = None  # PostgreSQL's backends' CPU, per real request


def merge(runs: list[WrkResult]) -> WrkResult:
    """Several runs of one script as one: totals, and the median of each latency figure."""
    return WrkResult(
        requests=sum(r.requests for r in runs),
        seconds=sum(r.seconds for r in runs),
        non_2xx=sum(r.non_2xx for r in runs),
        socket_errors=sum(r.socket_errors for r in runs),
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p90_ms=statistics.median(r.p90_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        max_ms=max(r.max_ms for r in runs),
    )


def side_by_side(
    server: Uvicorn,
    real: str,
    bare: str,
    *,
    seconds: float,
    rounds: int,
    connections: int,
    db: DatabaseCpu | None,
    settle: float = 0.0,
) -> Pair:
    """`rounds` short runs of each script, alternating (real, bare, bare, real, ...), so that
    load from elsewhere on a shared machine falls on both sides alike. Also counts the server's
    CPU time per request on each side, and PostgreSQL's (the database's backends; `db`) on the
    real side (Redis's is not included). `settle`: seconds after each run before the next,
    counted in the run's CPU (not in its requests/s), for work a run leaves behind (a buffer
    flushed every second, the jobs it sends): it lands on its own side, not on the next run."""
    runs: dict[str, list[WrkResult]] = {"real": [], "bare": []}
    cpu: dict[str, float] = {"real": 0.0, "bare": 0.0}
    db_cpu = 0.0
    ratios: list[float | None] = []
    loads: list[float] = []
    for n in range(rounds):
        order = [("real", real), ("bare", bare)]
        for name, script in order if n % 2 == 0 else order[::-1]:
            loads.append(os.getloadavg()[0])
            measure_db = db is not None and name == "real"
            before = server.cpu_seconds()
            db_before = db.seconds() if db is not None and measure_db else {}
            runs[name].append(
                run_wrk(server.base_url, script, seconds=seconds / rounds, connections=connections)
            )
            if settle:
                time.sleep(settle)
            cpu[name] += server.cpu_seconds() - before
            if db is not None and measure_db:
                db_cpu += DatabaseCpu.spent(db_before, db.seconds())
        ratios.append(ratio(runs["real"][-1].rps, runs["bare"][-1].rps))
    real_run, bare_run = merge(runs["real"]), merge(runs["bare"])
    per_request = {
        name: round(1000 * cpu[name] / run.requests, 3) if run.requests else None
        for name, run in (("real", real_run), ("bare", bare_run))
    }
    db_ms = round(1000 * db_cpu / real_run.requests, 3) if real_run.requests and db else None
    return Pair(real_run, bare_run, ratios, statistics.mean(loads), per_request, db_ms)


def pair_figures(pair: Pair) -> dict[str, Any]:
    return {
        "bigfootlive": pair.real.figures(),
        "bare_fastapi": pair.bare.figures(),
        "throughput_ratio": ratio(pair.real.rps, pair.bare.rps),
        "p99_ratio": ratio(pair.real.p99_ms, pair.bare.p99_ms),
        "round_throughput_ratios": pair.round_ratios,
        "server_cpu_ms_per_request": {
            "bigfootlive": pair.cpu_ms_per_request["real"],
            "bare_fastapi": pair.cpu_ms_per_request["bare"],
        },
        "postgres_cpu_ms_per_request": pair.db_cpu_ms_per_request,
        # bare / ours: the throughput ratio the server's CPU alone would allow
        "cpu_ratio": ratio(
            pair.cpu_ms_per_request["bare"] or 0, pair.cpu_ms_per_request["real"] or 0
        ),
        "load_average_1m": round(pair.load_average, 2),
    }
