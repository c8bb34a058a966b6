"""The soak benchmark's trend arithmetic: least-squares slope per minute and the growth verdict.

The benchmark itself runs for minutes against real services (`make bench`); these check the part
that decides its verdict, on series whose answer is known.
"""

from __future__ import annotations

import importlib
import os

import pytest
from bench.soak_metrics import slope_per_minute, trend, verdict


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
