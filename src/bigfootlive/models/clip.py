from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from bigfootlive.db import Base, IdMixin, TimestampMixin


class Clip(IdMixin, TimestampMixin, Base):
    """A cut of an event (from its DVR window or its recording) published as its own VOD asset
    under `vod/<event id>/clips/<clip id>/` with a poster; cut by a background job
    (`containers.tasks.cut_clip`). `status`: pending, ready, failed (`failure_reason`)."""

    __tablename__ = "clips"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    title: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(String(16))  # dvr | recording
    # dvr: wall-clock times (the DVR playlist's program date-time); recording: offsets
    start_at: Mapped[dt.datetime | None]
    end_at: Mapped[dt.datetime | None]
    start_seconds: Mapped[float | None]
    end_seconds: Mapped[float | None]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    failure_reason: Mapped[str | None] = mapped_column(String(300))
    duration_seconds: Mapped[float] = mapped_column(default=0.0)
    playback_url: Mapped[str | None] = mapped_column(String(1024))
    poster_url: Mapped[str | None] = mapped_column(String(1024))
    ready_at: Mapped[dt.datetime | None]
