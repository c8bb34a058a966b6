"""The figures a benchmark holds against a target, in one shared shape, and the table of them.

Every benchmark's JSON may carry a top-level `targets` list; `bench.run_all` collects the lists
of all the benchmarks it ran and prints one table at the end (see bench/README.md, "Targets"):

    {"name": "GET /api/auth/me vs bare", "value": 0.62, "target": 0.5, "unit": "x",
     "better": "higher", "met": true, "load_average": 3.1, "detail": "1,203 vs 1,940 req/s"}

`value` is the measured figure (a ratio for side-by-side figures), `target` the figure it must
reach, `better` says which way ("higher": met when value >= target; "lower": value <= target),
`met` is that comparison (null when the figure could not be measured), `load_average` the
1-minute load average when the figure was measured, `detail` the raw numbers behind a ratio.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, Literal

Better = Literal["higher", "lower"]


def target(
    name: str,
    value: float | None,
    goal: float,
    *,
    unit: str = "x",
    better: Better = "higher",
    load_average: float | None = None,
    detail: str = "",
) -> dict[str, Any]:
    """One row of `targets`. `load_average` defaults to the load average now."""
    met = None if value is None else (value >= goal if better == "higher" else value <= goal)
    return {
        "name": name,
        "value": None if value is None else round(value, 3),
        "target": goal,
        "unit": unit,
        "better": better,
        "met": met,
        "load_average": round(os.getloadavg()[0] if load_average is None else load_average, 2),
        "detail": detail,
    }


def _number(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "%":
        return f"{value:.1f} %"
    if unit == "x":
        return f"{value:.3g}x"
    return f"{value:,.4g} {unit}".strip()


def rows_of(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The `targets` rows of every benchmark's JSON (keyed by benchmark name), each with its
    benchmark's name in `bench`. A benchmark that failed contributes a row saying so."""
    rows: list[dict[str, Any]] = []
    for bench, result in results.items():
        if not isinstance(result, Mapping):
            continue
        if "error" in result and "targets" not in result:
            rows.append({"bench": bench, "name": "(failed: " + str(result["error"]) + ")"})
            continue
        for row in result.get("targets") or ():
            if isinstance(row, Mapping):
                rows.append({"bench": bench, **row})
    return rows


def table(rows: Iterable[Mapping[str, Any]]) -> str:
    """A plain-text table: benchmark, figure, measured, target, met, load average, detail."""
    header = ("bench", "figure", "measured", "target", "met", "load", "detail")
    lines = [header]
    for row in rows:
        unit = str(row.get("unit", "x"))
        sign = ">=" if row.get("better", "higher") == "higher" else "<="
        goal = row.get("target")
        met = row.get("met")
        lines.append(
            (
                str(row.get("bench", "")),
                str(row.get("name", "")),
                _number(row.get("value"), unit),
                "" if goal is None else f"{sign} {_number(goal, unit)}",
                "-" if met is None else ("yes" if met else "NO"),
                "" if row.get("load_average") is None else f"{row['load_average']:.1f}",
                str(row.get("detail", "")),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
