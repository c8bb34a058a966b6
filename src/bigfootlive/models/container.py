from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from bigfootlive.db import Base, IdMixin, JSONType, TimestampMixin


class EventContainer(IdMixin, TimestampMixin, Base):
    """The unit of compute of one event: one row per event, kept after the event for billing.

    `state` is the manager's view (starting, running, crashed, stopping, stopped); the worker
    writes its heartbeat, resource use and `worker_state` (what it needs to resume after a
    restart). `container_seconds` only grows: it is the compute the tenant pays for.
    """

    __tablename__ = "event_containers"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), unique=True
    )
    runtime: Mapped[str] = mapped_column(String(16))
    node: Mapped[str] = mapped_column(String(128), default="")
    handle: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default="starting", index=True)
    restarts: Mapped[int] = mapped_column(default=0)
    next_restart_at: Mapped[dt.datetime | None]
    started_at: Mapped[dt.datetime | None]
    stopped_at: Mapped[dt.datetime | None]
    stop_reason: Mapped[str | None] = mapped_column(String(64))
    last_heartbeat_at: Mapped[dt.datetime | None]
    cpu_percent: Mapped[float] = mapped_column(default=0.0)
    memory_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    container_seconds: Mapped[float] = mapped_column(default=0.0)
    worker_state: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Recording(IdMixin, TimestampMixin, Base):
    """An event's recording, published as an HLS VOD asset under CDN_BASE_URL once it ends."""

    __tablename__ = "recordings"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="ready")
    storage: Mapped[str] = mapped_column(String(8))
    location: Mapped[str] = mapped_column(String(512))
    playback_url: Mapped[str] = mapped_column(String(1024))
    duration_seconds: Mapped[float] = mapped_column(default=0.0)
    renditions: Mapped[list[str]] = mapped_column(JSONType, default=list)
    poster_url: Mapped[str | None] = mapped_column(String(1024))
    published_at: Mapped[dt.datetime | None]


class Lease(Base):
    """A named lease (e.g. leadership of the container manager): one holder until it expires."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[dt.datetime]
