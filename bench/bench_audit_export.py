"""The audit export's memory: peak RSS of a process that streams a tenant's audit trail
(`tenants.audit_export.export`, keyset chunks of 500) to a sink, for 10k and 100k records,
against the reference of the same rows fetched in one query and rendered as one body (what a
non-streaming export would do). Each measurement runs in a fresh subprocess (its own
`ru_maxrss`), on SQLite: one migrated file seeded once per size.

    .venv/bin/python -m bench.bench_audit_export [--sizes 10000,100000] [--format csv]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

TENANT = uuid.UUID("00000000-0000-4000-8000-000000000001")


def _settings(url: str):  # type: ignore[no-untyped-def]
    from bigfootlive.config import Settings

    return Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]


async def _seed(url: str, n: int) -> None:
    from sqlalchemy import insert

    from bigfootlive.db import Database
    from bigfootlive.migrations import upgrade_database
    from bigfootlive.models import AuditRecord

    await upgrade_database(url)
    db = Database.from_settings(_settings(url))
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    batch = 5000
    for start in range(0, n, batch):
        rows = [
            {
                "id": uuid.uuid4(),
                "tenant_id": TENANT,
                "actor_id": uuid.uuid4(),
                "action": "event.create",
                "result": "success",
                "target_type": "event",
                "target_id": str(uuid.uuid4()),
                "ip": "10.0.0.1",
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64) bench",
                "request_id": uuid.uuid4().hex,
                "details": {"title": "A benchmark event", "n": i},
                "created_at": t0 + dt.timedelta(seconds=i),
            }
            for i in range(start, min(n, start + batch))
        ]
        async with db.transaction() as session:
            await session.execute(insert(AuditRecord), rows)
    await db.dispose()


async def _run(url: str, mode: str, fmt: str) -> dict[str, float]:
    from sqlalchemy import select

    from bigfootlive.audit.filters import AuditFilter
    from bigfootlive.db import Database
    from bigfootlive.tenants import audit_export

    db = Database.from_settings(_settings(url))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    size = 0
    if mode == "streamed":
        async for piece in audit_export.export(db, TENANT, AuditFilter(), fmt):  # type: ignore[arg-type]
            size += len(piece)
    else:  # the reference: every row in one query, one body
        stmt = (
            AuditFilter()
            .apply(select(*audit_export._COLUMNS))
            .where(audit_export.AuditRecord.tenant_id == TENANT)
        )
        async with db.reads() as conn:
            rows = (await conn.execute(stmt)).all()
        body = (
            audit_export.render_csv(rows, header=True)
            if fmt == "csv"
            else audit_export.render_jsonl(rows)
        )
        size = len(body)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    await db.dispose()
    return {
        "peak_rss_mib": peak / 1024,
        "growth_mib": (peak - base) / 1024,
        "bytes": size,
        "seconds": round(elapsed, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--format", default="csv", choices=["csv", "jsonl"])
    parser.add_argument("--child", nargs=2, metavar=("URL", "MODE"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_run(args.child[0], args.child[1], args.format))))
        return
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            url = f"sqlite+aiosqlite:///{Path(tmp) / f'audit-{n}.db'}"
            asyncio.run(_seed(url, n))
            results[str(n)] = {}
            for mode in ("streamed", "all_in_memory"):
                out = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "bench.bench_audit_export",
                        "--format",
                        args.format,
                        "--child",
                        url,
                        mode,
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                results[str(n)][mode] = json.loads(out.stdout.strip().splitlines()[-1])
    sizes = sorted(results, key=int)
    small, large = results[sizes[0]], results[sizes[-1]]
    print(
        json.dumps(
            {
                "format": args.format,
                "records": results,
                "streamed_growth_large_vs_small_mib": [
                    round(small["streamed"]["growth_mib"], 1),
                    round(large["streamed"]["growth_mib"], 1),
                ],
                "reference_growth_large_vs_small_mib": [
                    round(small["all_in_memory"]["growth_mib"], 1),
                    round(large["all_in_memory"]["growth_mib"], 1),
                ],
                "load_average": os.getloadavg(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
