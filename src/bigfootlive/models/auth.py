from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from bigfootlive.db import Base, IdMixin, utcnow


class AuthSession(IdMixin, Base):
    """One sign-in on one device. Its id is the `sid` claim of every access token it issues."""

    __tablename__ = "auth_sessions"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    user_agent: Mapped[str] = mapped_column(String(512), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    amr: Mapped[str] = mapped_column(String(100), default="pwd")  # space-separated methods
    auth_time: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    revoked_at: Mapped[dt.datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(64))


class RefreshToken(IdMixin, Base):
    """Every refresh token a session was ever issued, so a reused one can be recognised."""

    __tablename__ = "refresh_tokens"

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    used_at: Mapped[dt.datetime | None]


class LoginLockout(Base):
    """Consecutive failed password sign-ins with one email address at one tenant.

    Keyed by the address, not by an account, so an address without an account locks and unlocks
    exactly like one with: the lockout says nothing about which accounts exist. `locked_until`
    is absolute (a lock counts down, it is not recomputed); the record is forgotten at
    `expires_at`, a quiet period after the last failure or lock.
    """

    __tablename__ = "login_lockouts"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    email_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int]
    locked_until: Mapped[dt.datetime | None]
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class PendingRegistration(IdMixin, Base):
    """A self-registration waiting for its address to be confirmed. The account is created only
    then, so registering says nothing about which addresses already have one."""

    __tablename__ = "pending_registrations"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class UserToken(IdMixin, Base):
    """Single-use emailed tokens (password reset, email verification), stored hashed."""

    __tablename__ = "user_tokens"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]
