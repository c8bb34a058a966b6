from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bigfootlive.db import Base, IdMixin, TimestampMixin, utcnow


class SsoProvider(IdMixin, TimestampMixin, Base):
    """One identity provider a tenant signs its users in with (OIDC, OAuth2, SAML or LDAP).

    `config` holds the validated, non-secret settings (see `sso.schemas.ProviderIn`);
    `secrets` maps a secret's name to its SecretBox ciphertext, bound to this row's id.
    The `metadata_*` columns describe the background refresh of the IdP's published metadata
    (OIDC discovery + JWKS, SAML metadata URL): the latest attempt, its outcome, and when the
    copy in use was last fetched successfully.
    """

    __tablename__ = "sso_providers"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    protocol: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(default=True)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secrets: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metadata_checked_at: Mapped[dt.datetime | None]
    metadata_refreshed_at: Mapped[dt.datetime | None]
    metadata_refresh_status: Mapped[str | None] = mapped_column(String(16))  # "ok" | "error"
    metadata_refresh_error: Mapped[str | None] = mapped_column(String(300))


class SsoIdentity(IdMixin, Base):
    """Links a provider's stable subject (OIDC `sub`, SAML NameID, LDAP DN) to a user."""

    __tablename__ = "sso_identities"
    __table_args__ = (UniqueConstraint("provider_id", "subject"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    provider_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sso_providers.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    subject: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[dt.datetime | None]
