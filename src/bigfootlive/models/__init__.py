"""All tables, imported here so Alembic and relationships see one metadata."""

from bigfootlive.models.audit import AuditRecord
from bigfootlive.models.auth import AuthSession, RefreshToken, UserToken
from bigfootlive.models.sso import SsoIdentity, SsoProvider
from bigfootlive.models.tenant import Tenant, TenantDomain
from bigfootlive.models.user import Follow, PasswordHistory, User

__all__ = [
    "AuditRecord",
    "AuthSession",
    "Follow",
    "PasswordHistory",
    "RefreshToken",
    "SsoIdentity",
    "SsoProvider",
    "Tenant",
    "TenantDomain",
    "User",
    "UserToken",
]
