from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from bigfootlive.db import Base, IdMixin, TimestampMixin


class SimulcastDestination(IdMixin, TimestampMixin, Base):
    """Where an event is restreamed while it is live (YouTube, Twitch, any RTMP/RTMPS URL).

    The destination's stream key is stored only as AES-GCM ciphertext (bound to this row's id)
    plus a short masked hint for display; the event's container decrypts it to push. `state`
    and `state_reason` are written by the container: idle, connecting, live, retrying, failed,
    stopped.
    """

    __tablename__ = "simulcast_destinations"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    platform: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(String(1024))
    key_ciphertext: Mapped[str] = mapped_column(String(1024))
    key_hint: Mapped[str] = mapped_column(String(32))
    enabled: Mapped[bool] = mapped_column(default=True)
    state: Mapped[str] = mapped_column(String(16), default="idle")
    state_reason: Mapped[str | None] = mapped_column(String(300))
    state_changed_at: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
