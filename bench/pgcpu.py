"""CPU time of PostgreSQL backends on this machine (/proc), for the benchmarks' per-request
database figures: `DatabaseCpu` for every backend connected to one database, `backends_cpu_s`
for given backends."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path


def backends_cpu_s(pids: list[int]) -> float:
    """CPU seconds the PostgreSQL backends `pids` have run (scheduler's ns, else ticks)."""
    total = 0.0
    for pid in pids:
        proc = Path("/proc") / str(pid)
        try:
            total += int((proc / "schedstat").read_text().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            except (OSError, ValueError, IndexError):
                pass
    return total


async def database_backends(admin_url: str) -> list[int]:
    """The PostgreSQL backends connected to the database of `admin_url` (the server's: the
    run's database is its own), but this look-up's. Same machine: their CPU is in /proc."""
    import asyncpg

    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return [row["pid"] for row in rows]


class DatabaseCpu:
    """CPU time of the PostgreSQL backends connected to one database (same machine: /proc),
    each backend's own (`read`, `seconds`); `spent(before, after)` adds up each backend's growth
    (one that appeared in between counts from zero, one that left is lost)."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def read(self) -> dict[int, float]:
        return {pid: backends_cpu_s([pid]) for pid in await database_backends(self.url)}

    def seconds(self) -> dict[int, float]:
        return asyncio.run(self.read())

    @staticmethod
    def spent(before: dict[int, float], after: dict[int, float]) -> float:
        return sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in after.items())
