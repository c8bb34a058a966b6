"""Charts drawn on the server as one SVG polyline: no script, nothing to load (the studio's
health and analytics panels)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

CHART_W, CHART_H = 300, 80


def polyline_chart(samples: Sequence[tuple[float, float]]) -> dict[str, Any] | None:
    """`samples`: (x, value) pairs in x order, drawn across the chart's width and scaled to its
    largest value. None below two samples: nothing to draw."""
    if len(samples) < 2:
        return None
    x0, x1 = samples[0][0], samples[-1][0]
    top = max(v for _, v in samples) or 1.0
    span = (x1 - x0) or 1.0
    points = " ".join(
        f"{(x - x0) / span * CHART_W:.1f},{CHART_H - v / top * (CHART_H - 4):.1f}"
        for x, v in samples
    )
    return {"points": points, "max": top, "w": CHART_W, "h": CHART_H}
