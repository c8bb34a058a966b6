from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from bigfootlive.jobs.schemas import JobStats

Millis = Annotated[int, Field(ge=0, le=120_000)]


class StartBeacon(BaseModel):
    """The player started playing: how long the first frame took."""

    type: Literal["start"]
    ts: dt.datetime | None = None
    startup_ms: Millis | None = None


class HeartbeatBeacon(BaseModel):
    """Sent every 10-30 s while playing: time watched and quality since the previous beacon."""

    type: Literal["heartbeat"]
    ts: dt.datetime | None = None
    watched_ms: Millis = 0
    rebuffer_ms: Millis = 0
    rebuffer_count: int = Field(default=0, ge=0, le=1000)
    bitrate_kbps: int | None = Field(default=None, ge=0, le=200_000)


class StopBeacon(BaseModel):
    type: Literal["stop"]
    ts: dt.datetime | None = None
    watched_ms: Millis = 0


Beacon = Annotated[StartBeacon | HeartbeatBeacon | StopBeacon, Field(discriminator="type")]


# Beacons in one request, at most: a player may queue several and send them together (fewer
# requests for the same beacons); a longer list is refused with 422 `validation_error`.
MAX_BEACONS_PER_BATCH = 50


class BeaconBatch(BaseModel):
    viewer_id: str = Field(
        min_length=8,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="A random id the player keeps for the viewing session (anonymous viewers)",
    )
    beacons: list[Beacon] = Field(
        min_length=1,
        max_length=MAX_BEACONS_PER_BATCH,
        description=f"1 to {MAX_BEACONS_PER_BATCH} beacons (more: 422 validation_error)",
    )


class BeaconsAccepted(BaseModel):
    accepted: int


class TimelinePoint(BaseModel):
    minute: dt.datetime
    viewers: int
    views_started: int
    watch_seconds: float
    chat_messages: int
    reactions: int
    rebuffer_seconds: float
    avg_bitrate_kbps: float | None


HealthStatus = Literal["ok", "degraded", "offline", "unknown"]


class HealthSample(BaseModel):
    """One health verdict, as a producer (the event container's monitor, the streaming
    domain's on-demand check) hands it over to be recorded."""

    status: HealthStatus
    reasons: list[str] = Field(default_factory=list)
    bitrate_kbps: float | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    viewers: int | None = None


class ContainerMinute(BaseModel):
    """What an event's container saw in one minute: the most viewers the media server
    reported, and the chat messages it checked."""

    minute: dt.datetime
    viewers: int = Field(default=0, ge=0)
    chat_messages: int = Field(default=0, ge=0)


class ContainerRollup(BaseModel):
    """The part of an event container's roll-up that analytics records (the rest — bytes in,
    time on air, moderation counts — stays in the container's row)."""

    tenant_id: uuid.UUID
    minutes: list[ContainerMinute] = Field(default_factory=list)


class HealthPoint(BaseModel):
    """Every verdict of one minute folded together."""

    minute: dt.datetime
    status: HealthStatus = Field(description="The worst verdict of the minute")
    samples: int
    status_samples: dict[HealthStatus, int] = Field(description="Verdicts per status")
    reasons: list[str] = Field(description="Every reason given in the minute, sorted")
    avg_bitrate_kbps: float | None
    min_bitrate_kbps: float | None
    avg_fps: float | None
    min_fps: float | None
    width: int | None = Field(description="The last sample's")
    height: int | None
    max_viewers: int = Field(description="As the media server counts them")


class HealthPage(BaseModel):
    items: list[HealthPoint] = Field(description="Oldest first")
    next_before: dt.datetime | None = Field(
        description="Pass as `before` for the minutes before these (null: none left)"
    )


class ViewerFigures(BaseModel):
    now: int
    peak: int
    peak_at: dt.datetime | None
    unique: int


class WatchTime(BaseModel):
    total_seconds: float
    average_seconds: float


class ChatFigures(BaseModel):
    messages: int
    per_minute: float


class QoE(BaseModel):
    avg_startup_ms: float | None
    rebuffer_ratio: float | None
    rebuffer_events: int
    avg_bitrate_kbps: float | None


class EventAnalytics(BaseModel):
    event_id: uuid.UUID
    title: str
    status: str
    went_live_at: dt.datetime | None
    ended_at: dt.datetime | None
    viewers: ViewerFigures
    watch_time: WatchTime
    chat: ChatFigures
    reactions: int
    new_followers: int
    qoe: QoE
    timeline: list[TimelinePoint]
    health: list[HealthPoint] = Field(
        description="Stream health per minute, oldest first: the latest 60 recorded minutes "
        "(page through all of them with GET /api/analytics/events/{id}/health)"
    )


class EventTotals(BaseModel):
    event_id: uuid.UUID
    title: str
    status: str
    created_at: dt.datetime
    peak_viewers: int
    unique_viewers: int
    watch_seconds: float
    chat_messages: int


class Period(BaseModel):
    watch_seconds: float
    unique_viewers: int
    chat_messages: int
    events: int


class Dashboard(BaseModel):
    events: list[EventTotals]
    last_7_days: Period
    previous_7_days: Period


class PlatformStats(BaseModel):
    tenants: int
    users: int
    events_total: int
    live_events: int
    viewers_now: int
    messages_per_second: float
    containers: int = Field(description="Event containers running now, on every node")
    queue_depth: int
    dead_jobs: int
    jobs: JobStats


class PlatformAnalytics(BaseModel):
    stats: PlatformStats
    last_24h: Period
    last_7_days: Period
    top_events: list[EventTotals]
