"""deploy/monitoring: the Prometheus alert rules and the Grafana dashboard parse, and every
expression is valid PromQL (promql-parser) naming only metrics /metrics exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from bigfootlive.observability.metrics import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
MONITORING = ROOT / "deploy" / "monitoring"
PROMETHEUS_OWN = {"up"}  # series Prometheus makes itself for every target
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}
_DURATION = re.compile(r"^\d+[smhd]$")


def exported_names() -> set[str]:
    names = set(PROMETHEUS_OWN)
    for family in REGISTRY.collect():
        names |= {family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))}
    return names


def selectors(node: Any) -> list[str]:
    """Metric names of every vector selector in a parsed PromQL expression."""
    if isinstance(node, promql_parser.VectorSelector):
        return [node.name]
    found: list[str] = []
    for attribute in ("lhs", "rhs", "expr", "args", "param", "vector_selector"):
        child = getattr(node, attribute, None)
        for item in child if isinstance(child, list | tuple) else [child]:
            if item is not None:
                found += selectors(item)
    return found


def check_expression(expr: str, where: str) -> list[str]:
    parsed = promql_parser.parse(expr)  # raises on invalid PromQL
    names = selectors(parsed)
    assert names, f"{where}: no metric in {expr!r}"
    unknown = set(names) - exported_names()
    assert not unknown, f"{where}: not exported by /metrics: {sorted(unknown)}"
    return names


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def test_alert_rules_are_well_formed_and_use_exported_metrics(rules):
    loaded = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    assert set(loaded) == {"groups"}
    group_names = [group["name"] for group in loaded["groups"]]
    assert len(group_names) == len(set(group_names))
    alerts = [rule["alert"] for rule in rules]
    assert len(alerts) == len(set(alerts)), "alert names must be unique"
    used: set[str] = set()
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
        assert "for" not in rule or _DURATION.match(rule["for"]), rule["for"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        used |= set(check_expression(rule["expr"], rule["alert"]))
    # the platform's own signals are each watched by some alert
    for wanted in (
        "bigfootlive_http_requests_total",
        "bigfootlive_dead_letters",
        "bigfootlive_jobs_oldest_pending_age_seconds",
        "bigfootlive_jobs_queued",
        "bigfootlive_webhook_attempts_total",
        "bigfootlive_fanout_lag_seconds_bucket",
        "bigfootlive_stream_health_verdicts_total",
        "bigfootlive_containers",
        "bigfootlive_login_failures_total",
        "bigfootlive_lockouts_total",
    ):
        assert wanted in used, f"no alert on {wanted}"


def test_a_misspelt_metric_is_caught():
    with pytest.raises(AssertionError, match="not exported"):
        check_expression("max(bigfootlive_dead_leters) > 0", "example")
    with pytest.raises(ValueError, match="parenthesis"):
        promql_parser.parse("sum(rate(bigfootlive_http_requests_total[5m]) >")


def test_the_grafana_dashboard_charts_every_platform_metric():
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    assert dashboard["uid"]
    assert dashboard["title"]
    assert any(v["type"] == "datasource" for v in dashboard["templating"]["list"])
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    charted: set[str] = set()
    for panel in panels:
        assert panel["targets"], panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel["targets"]:
            charted |= set(check_expression(target["expr"], panel["title"]))
    platform = {
        name
        for family in REGISTRY.collect()
        for name in [family.name]
        if not name.startswith("bigfootlive_http_requests_in_flight")
        and not name.startswith(("bigfootlive_job_", "bigfootlive_jobs_running"))
        and name != "bigfootlive_auth_events"
    }
    missing = {
        name for name in platform if not any(c == name or c.startswith(name + "_") for c in charted)
    }
    assert not missing, f"not on the dashboard: {sorted(missing)}"


def test_the_scrape_configuration_sends_the_metrics_token():
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "bigfootlive-api")
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer"
