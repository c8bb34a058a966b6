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


class JobOutbox(IdMixin, Base):
    """A job written in the transaction of the change that wants it (transactional outbox).

    Sent right after the commit and then deleted; a row still here after
    `JOBS_OUTBOX_RELAY_AFTER_SECONDS` was never sent (the process died between the commit and
    the send, or the broker was down) and the relay sends it.
    """

    __tablename__ = "job_outbox"

    message_id: Mapped[str] = mapped_column(String(64))
    task: Mapped[str] = mapped_column(String(100))
    kwargs: Mapped[dict[str, Any]]
    due_at: Mapped[dt.datetime | None]  # for a delayed job: when it should run
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(1000))
