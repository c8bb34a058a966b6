"""Who is calling: the access token's claims and the subject a request acts as.

FastAPI-free, so services take an `AuthSubject` without importing the web framework; the
dependencies that build one from a bearer token are in `authz.deps`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from bigfootlive.authz.roles import Permission, Role, role_allows
from bigfootlive.errors import Unauthorized
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


@dataclass(frozen=True, slots=True)
class AuthSubject:
    """Who is calling, as of this request (role and status read from the database)."""

    user: User
    claims: AccessClaims
    tenant_slug: str

    @property
    def user_id(self) -> uuid.UUID:
        return self.user.id

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.user.tenant_id

    @property
    def session_id(self) -> uuid.UUID:
        return self.claims.session_id

    @property
    def role(self) -> Role:
        return Role(self.user.role)

    @property
    def is_platform_admin(self) -> bool:
        return self.user.is_platform_admin

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
