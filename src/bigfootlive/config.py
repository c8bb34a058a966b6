"""Settings, read from the environment and `.env`, using the seed's variable names."""

from __future__ import annotations

import hashlib
from functools import cached_property
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_DEV_JWT_SECRET = "dev-insecure-jwt-secret-change-me-0123456789abcdef"  # noqa: S105


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # server
    node_env: Literal["development", "production", "test"] = "development"
    host: str = "127.0.0.1"
    port: int = 3001
    web_concurrency: int = 1
    public_base_url: str = "http://127.0.0.1:3001"
    log_level: str = "INFO"
    log_json: bool = True
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = 1_048_576
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # data
    database_url: str = "sqlite+aiosqlite:///./var/bigfootlive.db"
    database_read_url: str | None = None
    database_pool_size: int = 10
    database_max_overflow: int = 20
    # Off: no round trip per checkout; a connection the server dropped fails one request with
    # 503 database_unavailable and the pool replaces its connections.
    database_pool_pre_ping: bool = False
    database_application_name: str = "bigfootlive"  # shown in pg_stat_activity
    database_echo: bool = False
    auto_migrate: bool | None = None  # default: on for SQLite, off otherwise
    redis_url: str | None = None
    redis_key_prefix: str = "bfl:"

    # auth
    jwt_secret: SecretStr = SecretStr(_DEV_JWT_SECRET)
    jwt_previous_secrets: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    jwt_issuer: str = "bigfootlive"
    jwt_audience: str = "bigfootlive-api"
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    session_idle_timeout_seconds: int = 7 * 24 * 3600
    encryption_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    password_reset_ttl_seconds: int = 3600
    email_verification_ttl_seconds: int = 48 * 3600
    login_rate_limit: str = "20/minute"
    register_rate_limit: str = "10/minute"
    reset_rate_limit: str = "5/minute"
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19_456
    argon2_parallelism: int = 1

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
    media_server: Literal["nginx-rtmp", "srs", "mediamtx"] = "nginx-rtmp"
    reconnect_window_seconds: float = 30.0
    reconnect_sweep_interval_seconds: float = 2.0
    playback_token_ttl_seconds: int = 3600
    stream_lookup_cache_seconds: float = 30.0
    nginx_rtmp_stat_url: str | None = None
    srs_api_url: str | None = None
    health_stale_seconds: float = 15.0

    # chat and real-time (WebSocket gateway)
    chat_max_length: int = 500
    chat_rate_limit: str = "10/10second"
    chat_resume_limit: int = 200
    chat_max_timeout_seconds: int = 7 * 24 * 3600
    ws_send_queue_size: int = 256
    ws_batch_window_ms: float = 40.0
    ws_heartbeat_seconds: float = 20.0
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
    transcoder_input_url: str = "rtmp://127.0.0.1:1935/live/{playback_id}"
    transcoder_renditions: str = (
        "1080p:1920x1080:5000k,720p:1280x720:2800k,480p:854x480:1200k,audio:128k"
    )
    transcoder_segment_seconds: float = 2.0
    transcoder_preset: str = "veryfast"
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

    @field_validator("jwt_secret")
    @classmethod
    def _jwt_secret_long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 32:
            raise ValueError("JWT_SECRET must be at least 32 characters")
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def should_auto_migrate(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate

    @cached_property
    def data_keys(self) -> list[bytes]:
        """AES-256 keys for secrets at rest, newest first; derived from JWT_SECRET when unset."""
        raw = [k.get_secret_value() for k in self.encryption_keys] or [
            "derived:" + self.jwt_secret.get_secret_value()
        ]
        return [hashlib.sha256(k.encode()).digest() for k in raw]

    def check_production(self) -> None:
        if self.node_env == "production" and self.jwt_secret.get_secret_value() == _DEV_JWT_SECRET:
            raise ValueError("JWT_SECRET must be set in production")
