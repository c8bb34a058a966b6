from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel


class ContainerOut(BaseModel):
    event_id: uuid.UUID
    event_title: str
    event_status: str
    tenant_id: uuid.UUID
    runtime: str
    node: str
    state: str
    restarts: int
    uptime_seconds: float
    cpu_percent: float
    memory_bytes: int
    container_seconds: float
    last_heartbeat_at: dt.datetime | None
    started_at: dt.datetime | None
    stopped_at: dt.datetime | None
    stop_reason: str | None
    health: str | None = None


class TenantUsage(BaseModel):
    tenant_id: uuid.UUID
    container_seconds: float
    containers: int


class ContainerStatsOut(BaseModel):
    """Every container (platform admin) or the caller's tenant's (tenant admin)."""

    runtime: str
    node: str
    leader: bool | None
    running: int
    items: list[ContainerOut]
    usage: list[TenantUsage]


class RecordingOut(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    status: str
    storage: str
    playback_url: str
    duration_seconds: float
    renditions: list[str]
    published_at: dt.datetime | None
    created_at: dt.datetime
