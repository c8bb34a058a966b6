"""The soak benchmark's trend arithmetic: least-squares slope per minute and the growth verdict.

The benchmark itself runs for minutes against real services (`make bench`); these check the part
that decides its verdict, on series whose answer is known.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable

import pytest
from bench.run_all import figures_of
from bench.soak_metrics import judge, slope_per_minute, trend, ttl_warmup, verdict

from bigfootlive.config import Settings


def test_the_module_imports_and_exposes_its_trend_functions() -> None:
    module = importlib.import_module("bench.bench_soak")
    assert module.trend is trend
    assert callable(module.main)


def test_slope_of_a_straight_line_is_exact_per_minute() -> None:
    # 3 units every 10 s = 18 units a minute, whatever the intercept
    points = [(t, 100 + 0.3 * t) for t in range(0, 300, 10)]
    assert slope_per_minute(points) == pytest.approx(18.0)


def test_slope_of_noise_around_a_flat_line_is_zero() -> None:
    points = [(t, 50 + (1 if n % 2 else -1)) for n, t in enumerate(range(0, 600, 10))]
    # alternating +-1 over 10 minutes: 0.01 a minute, nothing like a trend
    assert abs(slope_per_minute(points)) < 0.02


def test_slope_needs_two_distinct_times() -> None:
    assert slope_per_minute([]) == 0.0
    assert slope_per_minute([(5, 10)]) == 0.0
    assert slope_per_minute([(5, 10), (5, 20)]) == 0.0


def test_flat_series_has_no_growth() -> None:
    result = trend([(t, 117.0) for t in range(0, 180, 10)], tolerance_pct=1.0)
    assert result == {
        "samples": 18,
        "mean": 117.0,
        "slope_per_min": 0.0,
        "slope_pct_of_mean_per_min": 0.0,
        "growing": False,
    }


def test_growth_is_judged_relative_to_the_mean() -> None:
    # +2 MB a minute around ~200 MB is 1 %/min: within 1.5 %, beyond 0.5 %
    points = [(t, 200 + 2 * t / 60) for t in range(0, 600, 10)]
    result = trend(points, tolerance_pct=1.5)
    assert result["slope_pct_of_mean_per_min"] == pytest.approx(
        100 * 2 / (200 + 2 * 295 / 60), 1e-3
    )
    assert result["growing"] is False
    assert trend(points, tolerance_pct=0.5)["growing"] is True


def test_a_falling_series_never_grows() -> None:
    assert trend([(t, 500 - t) for t in range(0, 300, 10)], tolerance_pct=0.0)["growing"] is False


def test_zero_mean_series_grows_only_with_a_positive_slope() -> None:
    assert trend([(t, 0.0) for t in range(0, 100, 10)], 1.0)["growing"] is False
    rising = trend([(0, -1.0), (60, 1.0)], 1.0)
    assert rising["growing"] is True
    assert rising["slope_pct_of_mean_per_min"] is None


def test_verdict_names_the_growing_metrics() -> None:
    flat = [(t, 10.0) for t in range(0, 120, 10)]
    leaking = [(t, 100 + t) for t in range(0, 120, 10)]
    assert verdict({"open_fds": flat, "rss_mb": flat}, 1.0)["verdict"] == "no growth trend"
    judged = verdict({"open_fds": leaking, "rss_mb": flat}, 1.0)
    assert judged["growing"] == ["open_fds"]
    assert judged["verdict"] == "growth: open_fds"


def test_make_bench_runs_the_soak_for_a_few_minutes_only() -> None:
    from bench import run_all

    options = run_all.SHORT_DEFAULTS["bench_soak"]
    assert options[0] == "--minutes"
    assert float(options[1]) <= 5 or "BENCH_SOAK_MINUTES" in os.environ


# ---------------------------------------------------------------- the steady-state window


def _redis_memory(t: float, ttl: float, leak_per_min: float = 0.0) -> float:
    """The run's own Redis memory (MB) as the soak's keys move it: ~0.6 MB of fixed keys, keys
    made at a steady rate that each live `ttl` seconds (so their number climbs for `ttl`, then
    holds), plus an optional leak that never stops."""
    keys = 500 * min(t, ttl) / 60  # 500 a minute, none expired before `ttl`
    return 0.6 + keys * 100 / 2**20 + leak_per_min * t / 60


def _samples(memory: Callable[[float], float], minutes: int = 30) -> list[dict[str, float]]:
    return [
        {"t_s": float(t), "redis_own_memory_mb": memory(t), "rss_mb": 120.0}
        for t in range(0, minutes * 60 + 1, 10)
    ]


def test_a_warm_up_bounded_by_a_ttl_is_not_judged_as_growth() -> None:
    ttl, _ = ttl_warmup(Settings(_env_file=None))
    samples = _samples(lambda t: _redis_memory(t, ttl))
    # judged from the start, the fill-up looks like a leak (the false "growth" of issue 18)
    assert judge(samples, {"redis_own_memory_mb": 60.0}, 1.0)["growing"] == ["redis_own_memory_mb"]
    # judged on the steady state after the longest TTL, it is flat
    judged = judge(samples, {"redis_own_memory_mb": ttl, "rss_mb": 60.0}, 1.0)
    assert judged["verdict"] == "no growth trend"
    assert judged["windows"]["redis_own_memory_mb"] == {
        "from_s": ttl, "to_s": 1800.0, "samples": int((1800 - ttl) / 10) + 1
    }  # fmt: skip


def test_a_steady_leak_is_still_growth_in_the_steady_state_window() -> None:
    ttl, _ = ttl_warmup(Settings(_env_file=None))
    # 0.03 MB a minute on ~2 MB: ~1.5 % of the mean a minute, on top of the same warm-up
    samples = _samples(lambda t: _redis_memory(t, ttl, leak_per_min=0.03))
    judged = judge(samples, {"redis_own_memory_mb": ttl, "rss_mb": 60.0}, 1.0)
    assert judged["growing"] == ["redis_own_memory_mb"]
    assert judged["verdict"] == "growth: redis_own_memory_mb"


def test_a_run_shorter_than_the_warm_up_says_which_metric_it_cannot_judge() -> None:
    samples = _samples(lambda t: _redis_memory(t, 900.0), minutes=3)
    judged = judge(samples, {"redis_own_memory_mb": 900.0, "rss_mb": 60.0}, 1.0)
    assert judged["too_short"] == ["redis_own_memory_mb"]
    assert judged["verdict"] == (
        "no growth trend; too short to judge: redis_own_memory_mb (steady state from 900 s)"
    )
    nothing = judge(samples, {"redis_own_memory_mb": 900.0}, 1.0)
    assert nothing["verdict"].startswith("too short to judge")


def test_the_warm_up_is_the_longest_ttl_of_the_keys_the_load_makes_from_settings() -> None:
    assert ttl_warmup(Settings(_env_file=None)) == (900.0, "analytics_seen_ttl_seconds")
    shorter = Settings(_env_file=None, analytics_seen_ttl_seconds=300)
    assert ttl_warmup(shorter) == (300.0, "analytics_seen_ttl_seconds")
    longer_principals = Settings(_env_file=None, auth_principal_ttl_seconds=1200)
    assert ttl_warmup(longer_principals) == (1200.0, "auth_principal_ttl_seconds")


def test_make_bench_finds_a_benchmarks_figures_among_its_log_lines() -> None:
    """`bench.run_all` read bench_jobs', bench_latency's and bench_media's figures as failures:
    their in-process provisioning logged to stdout before the JSON document."""
    figures = {"benchmark": "latency", "modes": [{"mode": "normal", "median_ms": 7076.0}]}
    printed = json.dumps(figures, indent=2)
    log_lines = (
        '{"event": "row_level_security_bypassed", "level": "warning"}\n'
        "2026-12-03 13:58:47 [info     ] platform_scope   reason='test provisioning'\n"
    )
    assert figures_of(log_lines + printed + "\n" + log_lines) == figures
    assert figures_of(printed) == figures
    assert figures_of(json.dumps(figures)) == figures  # printed on one line
    assert figures_of(log_lines) is None  # no document: the benchmark failed
