from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bigfootlive.db import Base, IdMixin, utcnow


class JobKey(Base):
    """An idempotency key: the effect it names has been applied (or is being applied)."""

    __tablename__ = "job_keys"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="done")  # claimed | done
    claimed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    done_at: Mapped[dt.datetime | None] = mapped_column(index=True)


class DeadJob(IdMixin, Base):
    """A job that used up its retries; a platform admin can retry or discard it."""

    __tablename__ = "dead_jobs"

    message_id: Mapped[str] = mapped_column(String(64), index=True)
    queue: Mapped[str] = mapped_column(String(100))
    task: Mapped[str] = mapped_column(String(100), index=True)
    kwargs: Mapped[dict[str, Any]]
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(String(2000), default="")
    traceback: Mapped[str] = mapped_column(Text, default="")
    failed_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
