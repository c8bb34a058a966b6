from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from bigfootlive.db import Base, JSONType, utcnow


class AnalyticsMinute(Base):
    """One event's figures for one minute, rolled up from player beacons and activity."""

    __tablename__ = "analytics_minutes"

    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    minute: Mapped[dt.datetime] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    viewers: Mapped[int] = mapped_column(default=0)  # distinct viewers seen in the minute
    views_started: Mapped[int] = mapped_column(default=0)
    views_ended: Mapped[int] = mapped_column(default=0)
    heartbeats: Mapped[int] = mapped_column(default=0)
    watch_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    rebuffer_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    rebuffer_events: Mapped[int] = mapped_column(default=0)
    startup_ms_sum: Mapped[int] = mapped_column(BigInteger, default=0)
    startup_samples: Mapped[int] = mapped_column(default=0)
    bitrate_kbps_sum: Mapped[int] = mapped_column(BigInteger, default=0)
    bitrate_samples: Mapped[int] = mapped_column(default=0)
    chat_messages: Mapped[int] = mapped_column(default=0)
    reactions: Mapped[int] = mapped_column(default=0)


class AnalyticsViewer(Base):
    """A distinct viewer of an event (a signed-in user or a player's anonymous id)."""

    __tablename__ = "analytics_viewers"

    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    viewer: Mapped[str] = mapped_column(String(80), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    first_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    watch_ms: Mapped[int] = mapped_column(BigInteger, default=0)


class EventSummary(Base):
    """Final figures of an ended event, written once its last roll-ups are in."""

    __tablename__ = "analytics_event_summaries"

    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    peak_viewers: Mapped[int] = mapped_column(default=0)
    peak_at: Mapped[dt.datetime | None]
    unique_viewers: Mapped[int] = mapped_column(default=0)
    watch_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    chat_messages: Mapped[int] = mapped_column(default=0)
    reactions: Mapped[int] = mapped_column(default=0)
    finalized_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AnalyticsHealthMinute(Base):
    """One event's stream health for one minute: every verdict of the minute folded together
    (from the event container's monitor and the streaming domain's on-demand checks)."""

    __tablename__ = "analytics_health_minutes"

    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    minute: Mapped[dt.datetime] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))  # the worst verdict of the minute
    samples: Mapped[int] = mapped_column(default=0)
    ok_samples: Mapped[int] = mapped_column(default=0)
    degraded_samples: Mapped[int] = mapped_column(default=0)
    offline_samples: Mapped[int] = mapped_column(default=0)
    unknown_samples: Mapped[int] = mapped_column(default=0)
    reasons: Mapped[list[str]] = mapped_column(JSONType, default=list)  # union, sorted
    bitrate_kbps_sum: Mapped[float] = mapped_column(default=0.0)
    bitrate_samples: Mapped[int] = mapped_column(default=0)
    bitrate_kbps_min: Mapped[float | None]
    fps_sum: Mapped[float] = mapped_column(default=0.0)
    fps_samples: Mapped[int] = mapped_column(default=0)
    fps_min: Mapped[float | None]
    width: Mapped[int | None]  # the last sample's
    height: Mapped[int | None]
    viewers_max: Mapped[int] = mapped_column(default=0)  # as the media server counts them
