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

# --- the platform ---------------------------------------------------------------------------
# Label values come from fixed vocabularies (statuses, verdicts, reasons, queue names): never a
# user, tenant or event id. Gauges marked "at scrape time" are read from the database by
# /metrics (platform-wide figures, the same whichever API process answers).

LIVE_EVENTS = Gauge(
    "bigfootlive_live_events",
    "Live events by status (live, reconnecting), at scrape time.",
    ["status"],
    registry=REGISTRY,
)
PUBLISHERS = Gauge(
    "bigfootlive_publishers",
    "Encoders connected (events with a publisher), at scrape time.",
    registry=REGISTRY,
)
CONTAINERS = Gauge(
    "bigfootlive_containers",
    "Event containers by state, at scrape time.",
    ["state"],
    registry=REGISTRY,
)
DEAD_LETTERS = Gauge(
    "bigfootlive_dead_letters",
    "Jobs in the dead letters (dead_jobs), at scrape time.",
    registry=REGISTRY,
)
OUTBOX_PENDING = Gauge(
    "bigfootlive_jobs_outbox_pending",
    "Jobs committed but not yet sent to the broker (transactional outbox), at scrape time.",
    registry=REGISTRY,
)
JOB_QUEUE_AGE = Gauge(
    "bigfootlive_jobs_oldest_pending_age_seconds",
    "Age of the oldest job waiting to be sent (outbox) or run (due and not done), at scrape time.",
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES_FAILED = Gauge(
    "bigfootlive_webhook_deliveries_failed",
    "Webhook deliveries that failed for good, at scrape time.",
    registry=REGISTRY,
)
WEBHOOK_ATTEMPTS = Counter(
    "bigfootlive_webhook_attempts_total",
    "Webhook delivery attempts by outcome (succeeded, failed).",
    ["outcome"],
    registry=REGISTRY,
)
WS_CONNECTIONS = Gauge(
    "bigfootlive_ws_connections",
    "WebSocket connections open on this process.",
    registry=REGISTRY,
)
WS_MESSAGES_IN = Counter(
    "bigfootlive_ws_messages_received_total",
    "Frames received from WebSocket clients.",
    registry=REGISTRY,
)
WS_MESSAGES_OUT = Counter(
    "bigfootlive_ws_messages_sent_total",
    "Messages delivered to WebSocket clients (one per message and connection).",
    registry=REGISTRY,
)
FANOUT_LAG = Histogram(
    "bigfootlive_fanout_lag_seconds",
    "From a message reaching this process's hub to its frame being handed to every socket.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
STREAM_HEALTH_VERDICTS = Counter(
    "bigfootlive_stream_health_verdicts_total",
    "Stream health verdicts by source (container, api) and verdict.",
    ["source", "verdict"],
    registry=REGISTRY,
)
LOGIN_FAILURES = Counter(
    "bigfootlive_login_failures_total",
    "Failed sign-ins by reason (bad_password, unknown_user, locked, …).",
    ["reason"],
    registry=REGISTRY,
)
LOCKOUTS = Counter(
    "bigfootlive_lockouts_total",
    "Accounts locked, by kind (password, mfa).",
    ["kind"],
    registry=REGISTRY,
)
LOGIN_FAILURE_REASONS = frozenset(
    {"bad_password", "unknown_user", "unknown_tenant", "locked", "inactive", "disabled"}
)
PLATFORM_SCOPES = Counter(
    "bigfootlive_platform_scopes_total",
    "Blocks of code that read or wrote every tenant's rows (row-level security bypassed on "
    "purpose), by reason (a fixed string in the code).",
    ["reason"],
    registry=REGISTRY,
)
