from __future__ import annotations

import datetime as dt
import enum
import uuid

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from bigfootlive.kit.credentials import Credentials

DEFAULT_DVR_WINDOW_SECONDS = 1800


class EventStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    READY = "ready"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    ENDED = "ended"
    CANCELLED = "cancelled"

    @property
    def is_finished(self) -> bool:
        return self in (EventStatus.ENDED, EventStatus.CANCELLED)

    @property
    def is_on_air(self) -> bool:
        return self in (EventStatus.LIVE, EventStatus.RECONNECTING)


class Visibility(enum.StrEnum):
    PUBLIC = "public"
    TENANT = "tenant"
    PRIVATE = "private"


class LatencyMode(enum.StrEnum):
    NORMAL = "normal"
    LOW = "low"
    ULTRA_LOW = "ultra_low"


class EventCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=5000)
    visibility: Visibility = Visibility.PUBLIC
    scheduled_start: AwareDatetime | None = None
    recording: bool = False
    latency_mode: LatencyMode = LatencyMode.NORMAL
    dvr_window_seconds: int = Field(
        DEFAULT_DVR_WINDOW_SECONDS,
        ge=0,
        le=86400,
        description="How far back viewers can rewind while live (0: no rewind); at most "
        "DVR_MAX_WINDOW_SECONDS",
    )


class EventUpdate(BaseModel):
    """Partial update; `version`, when given, must match (optimistic concurrency)."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=5000)
    visibility: Visibility | None = None
    scheduled_start: AwareDatetime | None = None
    recording: bool | None = None
    latency_mode: LatencyMode | None = None
    dvr_window_seconds: int | None = Field(None, ge=0, le=86400)
    version: int | None = Field(None, ge=1)


class EventOut(BaseModel):
    """What anyone allowed to see the event gets. Never carries the stream key."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    description: str
    visibility: Visibility
    scheduled_start: dt.datetime | None
    recording: bool
    latency_mode: LatencyMode
    dvr_window_seconds: int
    status: EventStatus
    version: int
    playback_id: str
    went_live_at: dt.datetime | None
    ended_at: dt.datetime | None
    ended_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    watch_url: str = Field(description="The event's watch page: the link to share")
    thumbnail_url: str | None = Field(
        None,
        description="While on air: a frame of the live stream, refreshed every few seconds "
        "(tenant and private events: add ?token= from the stream endpoint)",
    )
    poster_url: str | None = Field(
        None, description="A frame of the event's published recording, once there is one"
    )


class IngestOut(Credentials):
    """Where and how an encoder publishes. Shown to the event's owner and admins only."""

    server_url: str
    stream_key: str
    publish_url: str


class EventCreated(EventOut):
    ingest: IngestOut


class StateChange(BaseModel):
    """The message published on `event:{event_id}:state` after every committed transition."""

    event_id: uuid.UUID
    tenant_id: uuid.UUID
    status: EventStatus
    previous: EventStatus
    version: int
    at: dt.datetime
