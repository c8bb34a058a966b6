"""Settings, read from the environment and `.env`, using the seed's variable names."""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from functools import cached_property
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_DEV_JWT_SECRET = "dev-insecure-jwt-secret-change-me-0123456789abcdef"  # noqa: S105

# Secret values anyone can read: the development default and every example value of JWT_SECRET,
# JWT_PREVIOUS_SECRETS and ENCRYPTION_KEYS in .env.example, README.md, docs/ and deploy/.
# Production refuses them; tests/test_config.py fails when a file shows an example not listed here.
EXAMPLE_SECRETS = frozenset(
    {
        _DEV_JWT_SECRET,
        "change-me-to-at-least-32-random-characters",  # .env.example
    }
)
# Words that mark a value someone meant to replace (change-me also as changeme, change_me, ...).
_PLACEHOLDER = re.compile(
    r"change[-_. ]?me|replace[-_. ]?me|secret|example|placeholder|insecure|dummy|your[-_. ]",
    re.IGNORECASE,
)
MIN_SECRET_BITS = 128
GENERATE_COMMAND = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
EXAMPLE_DATABASE_URL = "postgresql+asyncpg://bigfoot:password@db.internal:5432/bigfootlive"


def estimated_entropy_bits(value: str) -> float:
    """A generous estimate of a secret's entropy: the length of its shortest repeating unit
    times the Shannon entropy of that unit's characters (how evenly they are spread). Repeats
    cost bits: "a" * 64 has 0, "0123456789abcdef" * 4 has 64; a random 32-character
    token_urlsafe has about 146, the 64 characters of token_urlsafe(48) about 330."""
    unit = value
    for period in range(1, len(value) // 2 + 1):
        if all(value[i] == value[i - period] for i in range(period, len(value))):
            unit = value[:period]
            break
    n = len(unit)
    return -n * sum(c / n * math.log2(c / n) for c in Counter(unit).values())


def secret_problem(name: str, value: str) -> str | None:
    """Why `value` must not be the secret `name` in production (never quoting it), or None."""
    fix = f"Generate one with: {GENERATE_COMMAND}"
    if value in EXAMPLE_SECRETS:
        return (
            f"{name} is the development default or an example value from the documentation: "
            f"anyone can forge tokens and read the secrets stored with it. {fix}"
        )
    if _PLACEHOLDER.search(value):
        return (
            f"{name} looks like a placeholder (it contains a word like change-me, secret, "
            f"example, placeholder or your-). {fix}"
        )
    bits = estimated_entropy_bits(value)
    if bits < MIN_SECRET_BITS:
        return (
            f"{name} is too easy to guess: about {bits:.0f} bits of entropy estimated from its "
            f"length and repeated characters, at least {MIN_SECRET_BITS} needed. {fix}"
        )
    return None


class ConfigurationError(ValueError):
    """Settings this process must not run with; `problems` name each variable and its fix."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", case_sensitive=False, env_ignore_empty=True
    )

    # server
    node_env: Literal["development", "production", "test"] = "development"
    host: str = "127.0.0.1"
    port: int = 3001
    web_concurrency: int = 1
    # Where browsers reach this server (emailed links, watch_url, passkeys' origin); unset:
    # http://HOST:PORT (127.0.0.1 for a wildcard HOST), so `PORT=4000 make run` links to 4000
    public_base_url: str = ""
    log_level: str = "INFO"
    log_json: bool = True
    # error tracking (Sentry): off unless SENTRY_DSN is set; events are scrubbed of secrets
    sentry_dsn: SecretStr | None = None
    sentry_environment: str | None = None  # default: NODE_ENV
    sentry_traces_sample_rate: float = Field(default=0.0, ge=0, le=1)
    # /metrics: with a token, only `Authorization: Bearer <METRICS_TOKEN>` is answered; with a
    # port, /metrics is served there (bind it to a private network) and not on PORT
    metrics_token: SecretStr | None = None
    metrics_port: int | None = None
    metrics_host: str | None = None  # where METRICS_PORT listens; default: HOST
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = 1_048_576
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # data
    database_url: str = "sqlite+aiosqlite:///./var/bigfootlive.db"
    database_read_url: str | None = None
    # The role that owns the tables and runs the migrations, when DATABASE_URL's role is the
    # application role (README, "Row-level security"); unset: migrations use DATABASE_URL.
    database_migration_url: str | None = None
    # PostgreSQL: a superuser or BYPASSRLS role escapes row-level security; refused at start in
    # production unless this says it is on purpose (warned otherwise).
    database_allow_rls_bypass: bool = False
    database_pool_size: int = 10
    database_max_overflow: int = 20
    # Off: no round trip per checkout; a connection the server dropped fails one request with
    # 503 database_unavailable and the pool replaces its connections.
    database_pool_pre_ping: bool = False
    database_application_name: str = "bigfootlive"  # shown in pg_stat_activity
    # PostgreSQL lock_timeout: a request waiting longer for a row or table lock (a migration,
    # a long transaction) fails with 503 database_busy + Retry-After instead of hanging; 0: off
    database_lock_timeout_ms: int = Field(default=5000, ge=0)
    database_echo: bool = False
    auto_migrate: bool | None = None  # default: on for SQLite, off otherwise
    redis_url: str | None = None
    # REDIS_URL names nodes of a Redis Cluster (redis://h:p[,h:p]; one reachable seed is
    # enough); also implied by a redis+cluster:// or rediss+cluster:// URL
    redis_cluster: bool = False
    redis_key_prefix: str = "bfl:"
    # production runs on PostgreSQL; SQLite (one process, one local file) only when asked for
    allow_sqlite_in_production: bool = False
    # the seed's MongoDB connection string: not supported (DATABASE_URL replaces it), only
    # read to say so instead of silently running on the default SQLite database
    mongodb_uri: SecretStr | None = None

    # auth
    jwt_secret: SecretStr = SecretStr(_DEV_JWT_SECRET)
    jwt_previous_secrets: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    jwt_issuer: str = "bigfootlive"
    jwt_audience: str = "bigfootlive-api"
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    session_idle_timeout_seconds: int = 7 * 24 * 3600
    # How long a process may answer from its authenticated-principal cache (0: read the
    # session, user and tenant on every request). Changes are seen at once regardless.
    auth_principal_ttl_seconds: float = 60.0
    # How long a process may sign in from its copy of a tenant and its SSO policy (0: read
    # them at every sign-in). A change is seen at once regardless (pub/sub); this bounds a
    # lost message.
    sign_in_policy_cache_seconds: float = 10.0
    encryption_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    password_reset_ttl_seconds: int = 3600
    invitation_ttl_seconds: int = 7 * 86400
    email_verification_ttl_seconds: int = 48 * 3600
    login_rate_limit: str = "20/minute"
    register_rate_limit: str = "10/minute"
    reset_rate_limit: str = "5/minute"
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19_456
    argon2_parallelism: int = 1
    # The password-hashing pool of each process: threads (default: the cores divided among
    # WEB_CONCURRENCY processes; with PASSWORD_HASH_SLOTS_DIR, all the cores), hashes allowed
    # to wait for one (more: 503 Retry-After) and the threads' nice value (the event loop,
    # hence /health, goes first). PASSWORD_HASH_SLOTS_DIR: lock files that limit the hashes of
    # every process sharing the directory to PASSWORD_HASH_SLOTS (default: the cores) at once
    # (kit/host_slots.py); `bigfootlive serve --workers N` (N > 1) makes one for its workers.
    password_hash_threads: int | None = Field(default=None, ge=1)
    password_hash_slots_dir: str | None = None
    password_hash_slots: int | None = Field(default=None, ge=1)
    password_hash_max_waiting: int = Field(default=32, ge=0)
    password_hash_nice: int = Field(default=10, ge=0, le=19)

    # sso
    sso_allow_private_networks: bool = False
    sso_http_timeout_seconds: float = 10.0

    # mail
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_use_tls: bool = False
    mail_from: str = "BigfootLive <no-reply@bigfootlive.local>"
    mail_outbox_dir: str = "./var/outbox"

    # mfa
    mfa_issuer: str = "BigfootLive"
    mfa_challenge_ttl_seconds: int = 300
    mfa_code_ttl_seconds: int = 300
    mfa_max_attempts: int = 5
    mfa_user_failure_limit: int = 20
    mfa_user_failure_window_seconds: int = 900
    mfa_send_rate_limit: str = "5/10minutes"
    mfa_step_up_max_age_seconds: int = 900
    webauthn_rp_id: str | None = None
    webauthn_rp_name: str = "BigfootLive"
    webauthn_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    sms_provider: Literal["log", "twilio"] = "log"
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str | None = None
    twilio_api_base_url: str = "https://api.twilio.com"

    # streaming (used by the live-events domain)
    rtmp_port: int = 1935
    cdn_base_url: str = "https://cdn.bigfootlive.com"
    rtmp_ingest_host: str = "127.0.0.1"
    media_server: Literal["nginx-rtmp", "srs", "mediamtx", "node-media-server"] = "nginx-rtmp"
    reconnect_window_seconds: float = 30.0
    reconnect_sweep_interval_seconds: float = 2.0
    # A live event whose media server sent no publish or "publisher alive" callback (nginx-rtmp
    # on_update) for this long goes to `reconnecting`, as when the media server is killed
    # without an unpublish; 0: off. About 3x the update interval (notify_update_timeout).
    publisher_silence_seconds: float = Field(default=0.0, ge=0)
    playback_token_ttl_seconds: int = 3600
    stream_lookup_cache_seconds: float = 30.0
    nginx_rtmp_stat_url: str | None = None
    srs_api_url: str | None = None
    mediamtx_api_url: str | None = None
    nms_api_url: str | None = None  # Node Media Server's REST API (kicks on stop)
    nms_api_secret: SecretStr | None = None  # its HS256 JWT secret (BFL_NMS_API_SECRET)
    health_stale_seconds: float = 15.0
    # the media server itself (streaming/managed): `managed` runs nginx-rtmp under `bigfootlive
    # serve`, `external` leaves it to the operator (`bigfootlive media-server config` prints
    # its configuration), `none` runs without one; `auto`: managed when nginx and its RTMP
    # module are installed and NODE_ENV=development, else external (production) / none
    media_server_mode: Literal["auto", "managed", "external", "none"] = "auto"
    media_listen_host: str = "127.0.0.1"  # nginx's RTMP and HTTP listeners (0.0.0.0: every address)
    media_http_port: int = 8080  # nginx's HTTP origin: HLS, ladder, VOD (and /stat, loopback)
    media_runtime_dir: str = "./var/media-server"  # generated nginx.conf, pid, logs, live HLS
    media_api_url: str | None = None  # how nginx reaches the API; default http://127.0.0.1:PORT
    nginx_binary: str = "nginx"
    nginx_rtmp_module: str = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
    media_auth_cache_seconds: float = Field(default=30.0, ge=0)  # nginx caches delivery decisions

    # chat and real-time (WebSocket gateway)
    chat_max_length: int = 500
    chat_rate_limit: str = "10/10second"
    chat_resume_limit: int = 200
    chat_max_timeout_seconds: int = 7 * 24 * 3600
    ws_send_queue_size: int = 256
    # The most a socket's chat frames are spaced out (realtime.hub.Hub.window: less for cheap
    # rooms).
    ws_batch_window_ms: float = 100.0
    ws_admission_cache_seconds: float = Field(default=5.0, ge=0)
    ws_heartbeat_seconds: float = 20.0
    gc_tuning: bool = True  # keep start-up objects out of the garbage collector
    ws_idle_timeout_seconds: float = 60.0
    ws_auth_timeout_seconds: float = 5.0
    ws_max_frame_bytes: int = 16_384
    presence_heartbeat_seconds: float = 5.0
    reactions_per_second: int = 10

    # storage
    aws_region: str = "us-west-2"
    s3_bucket_recordings: str = "recordings-bucket"
    s3_endpoint_url: str | None = None
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    s3_object_acl: str | None = None  # e.g. public-read when the CDN reads the bucket directly
    recordings_storage: Literal["local", "s3"] = "local"
    recordings_dir: str = "./var/media"
    # live HLS of an ended event is deleted this long after the end (0: kept); VOD is kept
    hls_retention_hours: float = Field(default=24.0, ge=0)
    # the media server's own HLS directory (nginx-rtmp `hls_path`), when this host can reach it
    nginx_rtmp_hls_path: str | None = None

    # event containers (one unit of compute per live event)
    container_runtime: Literal["inprocess", "subprocess", "kubernetes"] = "inprocess"
    # subprocess runtime: fork workers from a pre-imported template (else one interpreter each)
    container_worker_template: bool = True
    container_manager_enabled: bool = True
    container_node_name: str = ""  # default: this machine's hostname
    container_reconcile_interval_seconds: float = 2.0
    container_prewarm_seconds: float = 300.0
    container_stop_grace_seconds: float = 30.0
    container_heartbeat_interval_seconds: float = 2.0
    container_heartbeat_timeout_seconds: float = 15.0
    container_start_timeout_seconds: float = 120.0  # launch -> first heartbeat (image pulls)
    container_restart_backoff_seconds: float = 1.0
    container_restart_backoff_max_seconds: float = 60.0
    container_lease_ttl_seconds: float = 10.0
    container_max_per_tenant: int = 10
    container_max_per_node: int = 100
    container_cpu_limit: float = 1.0  # cores, per container (cgroup cpu.max / Pod limit)
    container_memory_limit_mb: int = 2048  # per container (cgroup memory.max, RLIMIT_AS, Pod)
    container_health_interval_seconds: float = 5.0
    container_rollup_interval_seconds: float = 10.0
    container_transcoder: bool = False
    # where the container pulls the ingest; unset: the local media server on RTMP_PORT
    transcoder_input_url: str | None = None
    transcoder_renditions: str = (
        "1080p:1920x1080:5000k,720p:1280x720:2800k,480p:854x480:1200k,audio:128k"
    )
    transcoder_segment_seconds: float = 2.0
    transcoder_preset: str = "veryfast"
    # ffmpeg (transcoder, copy-only recorder) and ffprobe (measured stream health)
    ffmpeg_path: str = "ffmpeg"
    ffprobe_path: str = "ffprobe"
    # simulcast / restream (containers/simulcast.py): destinations per tenant across its events
    # that have not ended; back-off between reconnects of one destination
    simulcast_max_destinations: int = Field(default=10, ge=0)
    simulcast_retry_min_seconds: float = Field(default=1.0, gt=0)
    simulcast_retry_max_seconds: float = Field(default=30.0, gt=0)
    simulcast_max_attempts: int = Field(default=0, ge=0)  # 0: retry while the event is live
    # previews and DVR (containers/previews.py): while live the event's container copies the
    # ingest into a DVR playlist of the event's window and grabs a thumbnail from it this often
    previews_enabled: bool = True
    preview_interval_seconds: float = Field(default=5.0, gt=0)
    dvr_max_window_seconds: int = Field(default=14400, ge=0)  # the most an event may ask for
    clip_max_seconds: float = Field(default=600.0, gt=0)  # the longest clip
    chat_blocked_terms: Annotated[list[str], NoDecode] = Field(default_factory=list)
    chat_flood_messages: int = 5  # more than this per user within chat_flood_seconds is hidden
    chat_flood_seconds: float = 10.0
    k8s_namespace: str = "bigfootlive"
    k8s_api_url: str | None = None  # empty: in-cluster config, else kubeconfig
    k8s_pod_template: str | None = None  # path to a Pod YAML; default: deploy/k8s/event-pod.yaml
    k8s_worker_image: str = "bigfootlive:latest"

    # jobs (Dramatiq): BROKER_URL amqp://… or redis://…; empty → REDIS_URL, else in-process
    broker_url: str | None = None
    jobs_inprocess_worker: bool | None = None  # default: on for the in-process broker only
    jobs_queue_prefix: str = "bigfootlive"
    jobs_worker_threads: int = 4
    jobs_max_retries: int = 8
    jobs_min_backoff_ms: int = 1000
    jobs_max_backoff_ms: int = 3_600_000
    jobs_time_limit_seconds: float = 300.0
    jobs_redis_heartbeat_timeout_ms: int = 60_000
    jobs_redis_maintenance_chance: int = 1000  # per million broker commands
    jobs_extra_task_modules: Annotated[list[str], NoDecode] = Field(default_factory=list)
    jobs_scheduler: bool = True
    # transactional outbox: rows not sent this long after their commit are sent by the relay
    jobs_outbox_relay_after_seconds: float = 5.0
    jobs_outbox_relay_interval_seconds: float = 2.0
    # relay sends that may fail for one row before it goes to the dead letters
    jobs_outbox_max_attempts: int = Field(default=10, ge=1)

    # analytics
    analytics_beacon_rate_limit: str = "60/minute"  # per viewer and event
    analytics_beacon_ip_rate_limit: str = "600/minute"  # per client address and event
    analytics_flush_seconds: float = 1.0  # beacons are buffered, then rolled up in one job
    # How long a viewer stays counted once in a minute's real-time figure (one Redis key per
    # viewer, event and minute, `an:{event}:seen:...`): with steady viewers their number levels
    # off after this long (the soak benchmark judges Redis memory only after it).
    analytics_seen_ttl_seconds: int = Field(default=900, ge=120)

    # webhooks and notifications
    webhook_timeout_seconds: float = 10.0
    webhook_allow_private_networks: bool = False

    @field_validator(
        "cors_origins",
        "trusted_proxies",
        "jwt_previous_secrets",
        "encryption_keys",
        "chat_blocked_terms",
        "jobs_extra_task_modules",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("webauthn_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator(
        "auto_migrate",
        "jobs_inprocess_worker",
        "metrics_port",
        "metrics_host",
        "sentry_environment",
        "sentry_dsn",
        "metrics_token",
        mode="before",
    )
    @classmethod
    def _empty_means_default(cls, value: object) -> object:
        # `AUTO_MIGRATE=` (as in .env.example): the default, not an invalid boolean
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _public_base_url_from_host_and_port(self) -> Settings:
        if not self.public_base_url.strip():
            host = self.host.strip()
            host = "127.0.0.1" if host in ("", "0.0.0.0", "::", "[::]") else host  # noqa: S104
            if ":" in host and not host.startswith("["):
                host = f"[{host}]"  # an IPv6 address
            self.public_base_url = f"http://{host}:{self.port}"
        return self

    @field_validator("jwt_secret")
    @classmethod
    def _jwt_secret_long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 32:
            raise ValueError("JWT_SECRET must be at least 32 characters")
        return value

    @property
    def uses_redis_cluster(self) -> bool:
        url = self.redis_url or ""
        return bool(url) and (
            self.redis_cluster or url.startswith(("redis+cluster:", "rediss+cluster:"))
        )

    @property
    def media_server_off(self) -> bool:
        """MEDIA_SERVER_MODE=none: no media server to pull the ingest from, probe or call."""
        return self.media_server_mode == "none"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def migration_url(self) -> str:
        return self.database_migration_url or self.database_url

    @property
    def should_auto_migrate(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate

    @cached_property
    def data_keys(self) -> list[bytes]:
        """AES-256 keys for secrets at rest, newest first (the first encrypts, every one
        decrypts). Unset ENCRYPTION_KEYS, they derive from JWT_SECRET and then from each of
        JWT_PREVIOUS_SECRETS (in production these passed the same checks as ENCRYPTION_KEYS
        would): rotating JWT_SECRET with the old one in JWT_PREVIOUS_SECRETS keeps the stored
        secrets readable until `bigfootlive keys reencrypt` moves them to the new key."""
        raw = [k.get_secret_value() for k in self.encryption_keys] or [
            "derived:" + secret.get_secret_value()
            for secret in (self.jwt_secret, *self.jwt_previous_secrets)
        ]
        return [hashlib.sha256(k.encode()).digest() for k in raw]

    @property
    def _mongodb_uri_set(self) -> bool:
        return bool(self.mongodb_uri and self.mongodb_uri.get_secret_value().strip())

    @property
    def warnings(self) -> list[str]:
        """Settings that are ignored or risky but do not stop a non-production process."""
        if self._mongodb_uri_set and self.node_env != "production":
            return [self._mongodb_message()]
        return []

    def _mongodb_message(self) -> str:
        return (
            "MONGODB_URI is set, but MongoDB is not supported and MONGODB_URI is not read: "
            "DATABASE_URL replaces it (this process uses "
            f"{'SQLite' if self.is_sqlite else 'the DATABASE_URL database'}). Move the data and "
            f"set DATABASE_URL, e.g. DATABASE_URL={EXAMPLE_DATABASE_URL}, then unset MONGODB_URI."
        )

    def production_problems(self) -> list[str]:
        """Why this configuration must not run with NODE_ENV=production (empty: it may)."""
        if self.node_env != "production":
            return []
        named = [("JWT_SECRET", self.jwt_secret)]
        for variable, values in (
            ("JWT_PREVIOUS_SECRETS", self.jwt_previous_secrets),
            # Unset, the data keys derive from JWT_SECRET, checked above.
            ("ENCRYPTION_KEYS", self.encryption_keys),
        ):
            named += [
                (f"{variable} (entry {i} of {len(values)})" if len(values) > 1 else variable, v)
                for i, v in enumerate(values, 1)
            ]
        if self.metrics_token is not None:  # whoever has it reads the platform's figures
            named.append(("METRICS_TOKEN", self.metrics_token))
        problems = [p for n, v in named if (p := secret_problem(n, v.get_secret_value()))]
        if self._mongodb_uri_set:
            problems.append(self._mongodb_message())
        elif self.is_sqlite and not self.allow_sqlite_in_production:
            problems.append(
                "DATABASE_URL is a SQLite database (the default when it is unset): one process on "
                "one machine's disk. Set DATABASE_URL to PostgreSQL, e.g. "
                f"DATABASE_URL={EXAMPLE_DATABASE_URL}, or set ALLOW_SQLITE_IN_PRODUCTION=true to "
                "run on SQLite anyway."
            )
        return problems

    def check_production(self) -> None:
        """Raises ConfigurationError when NODE_ENV=production and the configuration is unsafe."""
        if problems := self.production_problems():
            raise ConfigurationError(problems)
