from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bigfootlive.db import Base, IdMixin, TimestampMixin


class Event(IdMixin, TimestampMixin, Base):
    """A live broadcast and its lifecycle (see `events.lifecycle` for the state machine).

    The stream key is stored twice, never in the clear: AES-GCM ciphertext (to show it to its
    owner) and an HMAC of it (to find the event from the key a media server sends us).
    `version` grows on every status change; transitions are conditional UPDATEs on `status`.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_tenant_status_created", "tenant_id", "status", "created_at"),
        Index("ix_events_status_disconnected", "status", "disconnected_at"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    visibility: Mapped[str] = mapped_column(String(16), default="public")
    scheduled_start: Mapped[dt.datetime | None]
    recording: Mapped[bool] = mapped_column(default=False)
    latency_mode: Mapped[str] = mapped_column(String(16), default="normal")
    # how far back viewers can rewind while live (seconds; 0: no rewind)
    dvr_window_seconds: Mapped[int] = mapped_column(default=1800)
    # the poster of the event's published recording (a frame of it), once there is one
    poster_url: Mapped[str | None] = mapped_column(String(1024))
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    version: Mapped[int] = mapped_column(default=1)
    stream_key_ciphertext: Mapped[str] = mapped_column(String(255))
    stream_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The previous key's hash after a rotation while live: the running publisher's callbacks
    # (nginx-rtmp names it by the old key) still reach the event; cleared when it leaves.
    rotated_key_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    playback_id: Mapped[str] = mapped_column(String(32), unique=True)
    # The media server's id for the connected publisher: a second one is refused.
    publisher_id: Mapped[str | None] = mapped_column(String(128))
    armed_at: Mapped[dt.datetime | None]
    went_live_at: Mapped[dt.datetime | None]
    disconnected_at: Mapped[dt.datetime | None]
    # The hourly HLS-retention sweep looks events up by end time, across tenants.
    ended_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    ended_reason: Mapped[str | None] = mapped_column(String(32))
