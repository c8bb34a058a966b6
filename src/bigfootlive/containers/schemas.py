from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


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
    poster_url: str | None = None
    published_at: dt.datetime | None
    created_at: dt.datetime


class ClipCreate(BaseModel):
    """A cut of the event. `dvr` (while on air): `start_at` / `end_at`, wall-clock times within
    the event's DVR window (the DVR playlist's EXT-X-PROGRAM-DATE-TIME, hls.js `playingDate`).
    `recording`: `start_seconds` / `end_seconds` into the event's published recording."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field("", max_length=200)
    source: Literal["dvr", "recording"] = "dvr"
    start_at: AwareDatetime | None = None
    end_at: AwareDatetime | None = None
    start_seconds: float | None = Field(None, ge=0)
    end_seconds: float | None = Field(None, ge=0)


class ClipOut(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    title: str
    source: str
    start_at: dt.datetime | None
    end_at: dt.datetime | None
    start_seconds: float | None
    end_seconds: float | None
    status: str = Field(description="pending (being cut), ready or failed (failure_reason)")
    failure_reason: str | None
    duration_seconds: float
    playback_url: str | None = Field(
        description="HLS VOD under CDN_BASE_URL/vod/<event id>/clips/<clip id>/ (tenant and "
        "private events: ?token= from the stream endpoint)"
    )
    poster_url: str | None
    created_by: uuid.UUID | None
    created_at: dt.datetime
    ready_at: dt.datetime | None
