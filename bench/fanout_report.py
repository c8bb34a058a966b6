"""The fan-out benchmark's ratios against the reference and its targets (issue 17)."""

from __future__ import annotations

from typing import Any

from bench.summary import target


def ratios(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    def ratio(key: str) -> float | None:
        if not ours.get(key) or not theirs.get(key):
            return None
        return round(float(ours[key]) / float(theirs[key]), 3)

    return {
        "viewers": ours["viewers"],
        "delivered_per_second_ratio": ratio("delivered_per_second"),
        "p99_ratio": ratio("latency_ms_p99"),
        "cpu_ratio": ratio("server_cpu_percent"),
        "connect_seconds_ratio": ratio("connect_seconds"),
        "connect_cpu_ratio": ratio("connect_cpu_ms_per_1k"),
        "memory_per_connection_ratio": ratio("memory_per_connection_kb"),
    }


_REFERENCE = "socket.io+redis-adapter"


def _delivered_detail(ours: dict[str, Any], theirs: dict[str, Any] | None) -> str:
    """Each side's share of what was sent. Ours cannot deliver more than every message, so
    when it does, the ratio is 1 / the reference's share: 1.5x needs the reference to deliver
    at most two thirds of the messages it was sent."""
    share = ours.get("delivery_ratio") or 0.0
    parts = [f"ours {100 * share:.1f} % delivered"]
    if theirs is not None and theirs.get("delivery_ratio") is not None:
        parts.append(f"socket.io {100 * theirs['delivery_ratio']:.1f} %")
    if share >= 0.999:
        parts.append("ours delivered every message: the ratio is 1 / socket.io's share")
    return "; ".join(parts)


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 17's targets for this benchmark, from the levels that were measured."""
    ours = {row["viewers"]: row for row in report["results"].get("bigfootlive", [])}
    vs = {row["viewers"]: row for row in report.get("bigfootlive_vs_reference", [])}
    found: list[dict[str, Any]] = []
    if 10_000 in ours:
        found.append(
            target(
                "ws_connect_storm_10k_vs_socketio",
                vs.get(10_000, {}).get("connect_seconds_ratio"),
                2.0,
                unit="x",
                better="lower",
            )
        )
        found.append(
            target(
                "fanout_p99_10k_20msgs",
                ours[10_000]["latency_ms_p99"],
                100.0,
                unit="ms",
                better="lower",
            )
        )
    for n in (1_000, 5_000):
        if n in ours:
            found.append(
                target(
                    f"fanout_p99_{n // 1000}k_vs_socketio",
                    vs.get(n, {}).get("p99_ratio"),
                    2.0,
                    unit="x",
                    better="lower",
                )
            )
    if 20_000 in ours:
        theirs = {row["viewers"]: row for row in report["results"].get(_REFERENCE, [])}
        found.append(
            target(
                "fanout_delivered_20k_vs_socketio",
                vs.get(20_000, {}).get("delivered_per_second_ratio"),
                1.5,
                unit="x",
                better="higher",
                detail=_delivered_detail(ours[20_000], theirs.get(20_000)),
            )
        )
    capacity = report.get("capacity", {})
    if "bigfootlive" in capacity:
        mine, theirs_row = capacity["bigfootlive"], capacity.get(_REFERENCE)
        found.append(
            target(
                f"fanout_delivered_{mine['viewers'] // 1000}k_at_capacity_vs_socketio",
                ratios(mine, theirs_row)["delivered_per_second_ratio"] if theirs_row else None,
                1.5,
                unit="x",
                better="higher",
                detail=f"{report.get('capacity_rate_msgs_per_second')} msgs/s offered; "
                + _delivered_detail(mine, theirs_row),
            )
        )
    if ours:
        largest = ours[max(ours)]
        found.append(
            target(
                "memory_per_viewer_connection",
                largest["memory_per_connection_kb"],
                15.0,
                unit="KB",
                better="lower",
            )
        )
    return found
