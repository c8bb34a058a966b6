from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bigfootlive.db import Base, IdMixin, utcnow


class MfaFactor(IdMixin, Base):
    """One second factor of a user: a TOTP app, a passkey, an email or SMS destination.

    A factor counts only once `confirmed_at` is set (the user proved it works).
    """

    __tablename__ = "mfa_factors"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(16))  # totp | webauthn | email | sms
    name: Mapped[str] = mapped_column(String(100))
    # TOTP: the seed, AES-GCM sealed with state.secrets (context "mfa-totp:<factor id>").
    secret_ciphertext: Mapped[str | None] = mapped_column(Text)
    # TOTP: the last accepted time step; a code of that step or earlier is refused (replay).
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # WebAuthn: base64url credential id, COSE public key and the authenticator's sign counter.
    credential_id: Mapped[str | None] = mapped_column(String(1400), unique=True)
    public_key: Mapped[str | None] = mapped_column(Text)
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    # Email / SMS: where codes go.
    destination: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]


class MfaBackupCode(IdMixin, Base):
    """A single-use recovery code, stored as a keyed hash."""

    __tablename__ = "mfa_backup_codes"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    used_at: Mapped[dt.datetime | None]
