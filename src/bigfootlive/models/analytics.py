from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from bigfootlive.db import Base, utcnow


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
