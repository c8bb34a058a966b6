"""Prometheus metrics. Labels use the route template, never the raw path (bounded cardinality)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "bigfootlive_http_requests_total",
    "HTTP requests by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "bigfootlive_http_request_duration_seconds",
    "HTTP request latency by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
HTTP_IN_FLIGHT = Gauge(
    "bigfootlive_http_requests_in_flight", "HTTP requests being served.", registry=REGISTRY
)
AUTH_EVENTS = Counter(
    "bigfootlive_auth_events_total",
    "Authentication events by action and result.",
    ["action", "result"],
    registry=REGISTRY,
)
