"""Run every `bench/bench_*.py` module in turn, print their figures as one JSON document
(stdout) and, at the end, one table of every figure held against a target (stderr).

    python -m bench.run_all            # all of them (what `make bench` runs)
    python -m bench.run_all bench_api  # only the named ones
    BENCH_SOAK_MINUTES=20 python -m bench.run_all bench_soak  # the full-length soak

Each module runs in its own process (`python -m bench.<name>`), so one benchmark's servers and
worker pools cannot disturb the next. The table is made of the `targets` rows each benchmark's
JSON carries (`bench.summary`; the format is in bench/README.md). Exits non-zero if any
benchmark failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench import summary

HERE = Path(__file__).resolve().parent

# Options `run_all` gives a benchmark whose own defaults are too long for `make bench`: the soak
# runs 20 minutes by default, 3 here (BENCH_SOAK_MINUTES to change it).
SHORT_DEFAULTS: dict[str, list[str]] = {
    "bench_soak": ["--minutes", os.environ.get("BENCH_SOAK_MINUTES", "3")],
}


def figures_of(stdout: str) -> dict[str, object] | None:
    """The benchmark's JSON document in its stdout: the first object printed indented (`{` alone
    on its line), else the whole output. Log lines of the code under test may come before or
    after it (a benchmark that provisions in-process logs as the app does, to stdout); they are
    one-line records, so they never open with a lone `{`."""
    decoder = json.JSONDecoder()
    text = "\n" + stdout
    at = text.find("\n{\n")
    while at != -1:
        try:
            document, _ = decoder.raw_decode(text, at + 1)
        except json.JSONDecodeError:
            document = None
        if isinstance(document, dict):
            return document
        at = text.find("\n{\n", at + 1)
    try:
        whole = json.loads(stdout)
    except json.JSONDecodeError:
        return None
    return whole if isinstance(whole, dict) else None


def discover() -> list[str]:
    return sorted(path.stem for path in HERE.glob("bench_*.py"))


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or discover()
    results: dict[str, object] = {}
    failed: list[str] = []
    for name in names:
        print(f"==> bench.{name}", file=sys.stderr, flush=True)
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", f"bench.{name}", *SHORT_DEFAULTS.get(name, [])],
            cwd=HERE.parent,
            stdout=subprocess.PIPE,
            text=True,
            check=False,
        )
        elapsed = round(time.monotonic() - started, 1)
        document = figures_of(proc.stdout)
        if document is None:
            results[name] = {"error": f"exit {proc.returncode}", "output": proc.stdout[-4000:]}
        else:
            results[name] = document
        if proc.returncode != 0:
            failed.append(name)
        print(f"    {name}: exit {proc.returncode} in {elapsed}s", file=sys.stderr, flush=True)
    rows = summary.rows_of(results)
    load = os.getloadavg()
    print(json.dumps({**results, "summary": rows}, indent=2))
    print(
        f"\n==> targets (load average now {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f},"
        f" {os.cpu_count()} cores)\n{summary.table(rows)}",
        file=sys.stderr,
    )
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
