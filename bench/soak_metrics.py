"""The soak benchmark's measurements: resource samples of the server and its services, and the
least-squares trend of each series with the "no growth" verdict (pure functions, unit-tested in
tests/test_bench_soak.py).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import loadgen

# Judged by the verdict. `redis_own_memory_mb` is what this run's keys take (`MEMORY USAGE` of
# each key under its prefix, summed): the instance-wide `used_memory` also moves with other
# programs' keys, clients' buffers and the allocator, so a slope in it said nothing of ours.
METRICS = ("rss_mb", "open_fds", "pg_connections", "redis_own_memory_mb")
# Reported with their slope, not judged (other programs' keys do not move the key count; the
# instance's memory moves with everything on it); `redis_key_kinds` shows the keys by shape,
# with the bytes each shape holds.
INFORMATIONAL = ("redis_keys", "jobs_pending", "redis_used_memory_mb")
# The series the run's Redis keys move. Keys that expire fill up for as long as they live and
# then level off (as many expire as are made): growth bounded by a TTL, not a leak. These are
# judged only on the steady state, after the longest TTL of the keys the load makes in numbers
# that grow with time (`ttl_warmup`); the others after `--warmup`.
TTL_BOUNDED = ("redis_own_memory_mb", "redis_used_memory_mb", "redis_keys")


def ttl_warmup(settings: Any) -> tuple[float, str]:
    """Seconds until the Redis keys the soak's load keeps making level off, and the setting
    that says so: the longest TTL among them. Per viewer and minute, the analytics keys
    (`an:{event}:seen:<viewer>:<minute>`, `ANALYTICS_SEEN_TTL_SECONDS`); per account, the
    authenticated principals (`AUTH_PRINCIPAL_TTL_SECONDS`). (The keys the load makes in bounded
    numbers whatever their TTL, one per viewer or one a minute, weigh nothing next to them.)"""
    ttls = {
        "analytics_seen_ttl_seconds": float(settings.analytics_seen_ttl_seconds),
        "auth_principal_ttl_seconds": float(settings.auth_principal_ttl_seconds),
    }
    name = max(ttls, key=lambda k: ttls[k])
    return ttls[name], name


# ---------------------------------------------------------------- the trend (pure, tested)


def slope_per_minute(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, in value units per minute."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return cov / var * 60.0


def trend(points: Sequence[tuple[float, float]], tolerance_pct: float) -> dict[str, Any]:
    """Slope per minute, mean, slope as % of the mean per minute, and whether it grows:
    `growing` when the slope exceeds `tolerance_pct` % of the mean per minute (a falling or flat
    series never grows; with a zero mean, any positive slope is growth)."""
    slope = slope_per_minute(points)
    mean = sum(v for _, v in points) / len(points) if points else 0.0
    if mean > 0:
        relative: float | None = 100.0 * slope / mean
    else:
        relative = 0.0 if slope <= 0 else None
    growing = relative is None or relative > tolerance_pct
    return {
        "samples": len(points),
        "mean": round(mean, 3),
        "slope_per_min": round(slope, 4),
        "slope_pct_of_mean_per_min": None if relative is None else round(relative, 3),
        "growing": growing,
    }


def verdict(series: dict[str, list[tuple[float, float]]], tolerance_pct: float) -> dict[str, Any]:
    trends = {name: trend(points, tolerance_pct) for name, points in series.items()}
    growing = [name for name, t in trends.items() if t["growing"]]
    return {
        "trends": trends,
        "growing": growing,
        "verdict": "no growth trend" if not growing else "growth: " + ", ".join(growing),
    }


def judge(
    samples: Sequence[dict[str, float]],
    starts: dict[str, float],
    tolerance_pct: float,
    min_samples: int = 3,
) -> dict[str, Any]:
    """The verdict on `samples` (each with `t_s` and every metric of `starts`), each metric
    judged on its window: the samples from `starts[metric]` seconds on. A metric with fewer
    than `min_samples` there is not judged (`too_short`); the verdict names the growing ones."""
    series = {
        m: [(s["t_s"], float(s[m])) for s in samples if s["t_s"] >= t] for m, t in starts.items()
    }
    last = max((s["t_s"] for s in samples), default=0.0)
    windows = {m: {"from_s": t, "to_s": last, "samples": len(series[m])} for m, t in starts.items()}
    short = [m for m in starts if len(series[m]) < min_samples]
    judged = verdict({m: p for m, p in series.items() if m not in short}, tolerance_pct)
    judged["trends"].update({m: trend(series[m], tolerance_pct) for m in short})
    if short and len(short) == len(starts):
        judged["verdict"] = f"too short to judge: fewer than {min_samples} samples in every window"
    elif short:
        judged["verdict"] += "; too short to judge: " + ", ".join(
            f"{m} (steady state from {starts[m]:g} s)" for m in short
        )
    return {**judged, "too_short": short, "windows": windows}


def _tree(pid: int) -> list[int]:
    import psutil

    try:
        root = psutil.Process(pid)
        return [root.pid, *(p.pid for p in root.children(recursive=True))]
    except psutil.Error:
        return []


def rss_and_fds(pid: int) -> tuple[float, int]:
    """RSS (MB) and open file descriptors of the server process and its children."""
    rss = 0
    fds = 0
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) * 1024
            fds += len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            continue
    return rss / 2**20, fds


async def sample(server_pid: int, db_name: str, prefix: str, redis_url: str) -> dict[str, float]:
    import asyncpg
    from redis.asyncio import Redis

    rss, fds = rss_and_fds(server_pid)
    conn = await asyncpg.connect(loadgen.PG_ADMIN_URL)
    try:
        pg = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", db_name
        )
    finally:
        await conn.close()
    redis = Redis.from_url(redis_url)
    try:
        used = (await redis.info("memory"))["used_memory"]
        keys, own = 0, 0
        queues = []  # the job broker's messages by queue (dramatiq: `<queue>.msgs` hashes)
        batch: list[bytes] = []
        async for key in redis.scan_iter(match=prefix + "*", count=1000):
            keys += 1
            batch.append(key)
            if key.endswith(b".msgs"):
                queues.append(key)
            if len(batch) == 500:
                own += await _memory_usage(redis, batch)
                batch = []
        own += await _memory_usage(redis, batch)
        pending = sum([int(await redis.hlen(q)) for q in queues])
    finally:
        await redis.aclose()
    return {
        "rss_mb": round(rss, 2),
        "open_fds": fds,
        "pg_connections": int(pg),
        "redis_used_memory_mb": round(used / 2**20, 3),
        "redis_own_memory_mb": round(own / 2**20, 3),
        "redis_keys": keys,
        "jobs_pending": pending,
    }


async def _memory_usage(redis: Any, keys: Sequence[bytes]) -> int:
    """Bytes the keys take (`MEMORY USAGE`, one pipeline); a key gone meanwhile counts 0."""
    if not keys:
        return 0
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.memory_usage(key)
        return sum(int(size or 0) for size in await pipe.execute())


async def redis_key_kinds(prefix: str, redis_url: str) -> dict[str, dict[str, int]]:
    """This run's Redis keys grouped by shape (ids and numbers folded): count, bytes (`MEMORY
    USAGE`) and longest TTL; the 15 shapes that hold the most bytes."""
    import re

    from redis.asyncio import Redis

    kinds: dict[str, dict[str, int]] = {}
    redis = Redis.from_url(redis_url)
    try:
        async for raw in redis.scan_iter(match=prefix + "*", count=1000):
            key = raw.decode()[len(prefix) :]
            shape = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}|[0-9a-f]{16,}|\d+", "N", key)
            kind = kinds.setdefault(shape, {"keys": 0, "bytes": 0, "max_ttl_s": -1})
            kind["keys"] += 1
            kind["bytes"] += await _memory_usage(redis, [raw])
            if kind["keys"] <= 20:  # a sample of TTLs is enough
                kind["max_ttl_s"] = max(kind["max_ttl_s"], int(await redis.ttl(raw)))
    finally:
        await redis.aclose()
    top = sorted(kinds.items(), key=lambda item: -item[1]["bytes"])[:15]
    return dict(top)
