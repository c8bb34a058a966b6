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

JOBS = Counter(
    "bigfootlive_jobs_total",
    "Jobs by queue, task and outcome (enqueued, succeeded, failed attempts, dead).",
    ["queue", "task", "outcome"],
    registry=REGISTRY,
)
JOBS_RUNNING = Gauge(
    "bigfootlive_jobs_running",
    "Jobs running in this process.",
    ["queue", "task"],
    registry=REGISTRY,
)
JOBS_QUEUED = Gauge(
    "bigfootlive_jobs_queued",
    "Messages waiting in the broker (ready + delayed), read at scrape time.",
    ["queue"],
    registry=REGISTRY,
)
JOB_START_LATENCY = Histogram(
    "bigfootlive_job_start_latency_seconds",
    "From enqueue (or due time) to the first start of a job.",
    ["task"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
JOB_DURATION = Histogram(
    "bigfootlive_job_duration_seconds",
    "Job run time by task.",
    ["task"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)

PLATFORM_SCOPES = Counter(
    "bigfootlive_platform_scopes_total",
    "Blocks of code that read or wrote every tenant's rows (row-level security bypassed on "
    "purpose), by reason (a fixed string in the code).",
    ["reason"],
    registry=REGISTRY,
)
