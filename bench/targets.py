"""The `targets` list every benchmark's JSON ends with: one entry per figure that has a target
(issue 17), for `make bench`'s summary table.

    {"name": ..., "value": 1.4, "target": 2.0, "op": "<=", "unit": "x", "met": true}

`value` None (not measured in this run, e.g. no reference peer) is never met.
"""

from __future__ import annotations

from typing import Any


def target(name: str, value: float | None, op: str, goal: float, unit: str) -> dict[str, Any]:
    if op not in ("<=", ">="):
        raise ValueError(op)
    met = value is not None and (value <= goal if op == "<=" else value >= goal)
    rounded = None if value is None else round(value, 3)
    return {"name": name, "value": rounded, "target": goal, "op": op, "unit": unit, "met": met}
