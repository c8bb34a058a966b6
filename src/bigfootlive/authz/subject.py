"""Who is calling: the access token's claims and the subject a request acts as.

FastAPI-free, so services take an `AuthSubject` without importing the web framework; the
dependencies that build one from a bearer token are in `authz.deps`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bigfootlive.authz.roles import Permission, Role, role_allows
from bigfootlive.errors import Unauthorized
from bigfootlive.kit.detached import detached
from bigfootlive.models import User


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    session_id: uuid.UUID
    roles: tuple[str, ...]
    amr: tuple[str, ...]
    auth_time: int
    expires_at: int


@dataclass(frozen=True, slots=True, eq=False)
class Principal:
    """What authentication read about a session's user: their row, their tenant's slug and
    status, the session's expiry. Immutable, so one instance may serve many requests
    (`identity.principals.PrincipalCache` keeps it while nothing it depends on changes)."""

    user_row: Mapping[str, Any] = field(repr=False)  # every column of the user's row
    tenant_slug: str
    tenant_active: bool
    session_expires_at: dt.datetime
    # Response bodies that depend only on this principal (`/api/auth/me`), rendered once.
    rendered: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)

    @property
    def user_id(self) -> uuid.UUID:
        value: uuid.UUID = self.user_row["id"]
        return value

    @property
    def tenant_id(self) -> uuid.UUID:
        value: uuid.UUID = self.user_row["tenant_id"]
        return value

    @property
    def role(self) -> str:
        return str(self.user_row["role"])

    @property
    def is_platform_admin(self) -> bool:
        return bool(self.user_row["is_platform_admin"])

    @property
    def is_active(self) -> bool:
        return bool(self.user_row["is_active"])


class AuthSubject:
    """Who is calling, as of this request (role and status as the database had them when the
    principal was read; every change to them invalidates it, see `identity.principals`)."""

    __slots__ = ("_user", "claims", "principal")

    def __init__(self, principal: Principal, claims: AccessClaims) -> None:
        self.principal = principal
        self.claims = claims
        self._user: User | None = None

    @property
    def user(self) -> User:
        """The caller's `User`, detached (not in any session): read it, do not change it; a
        service that changes the account loads it in its own session."""
        if self._user is None:
            self._user = detached(User, self.principal.user_row)
        return self._user

    @property
    def user_id(self) -> uuid.UUID:
        return self.principal.user_id

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.principal.tenant_id

    @property
    def tenant_slug(self) -> str:
        return self.principal.tenant_slug

    @property
    def session_id(self) -> uuid.UUID:
        return self.claims.session_id

    @property
    def role(self) -> Role:
        return Role(self.principal.role)

    @property
    def is_platform_admin(self) -> bool:
        return self.principal.is_platform_admin

    @property
    def auth_time(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.claims.auth_time, dt.UTC)

    def can(self, permission: Permission) -> bool:
        return self.is_platform_admin or role_allows(self.role, permission)


class TenantInactive(Unauthorized):
    """The caller's tenant has been deactivated: its members and keys are refused until it is
    reactivated (platform admins excepted, so operators never lock themselves out)."""

    code = "tenant_inactive"
    message = "The organisation's account is deactivated"
