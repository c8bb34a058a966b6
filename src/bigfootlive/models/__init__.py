"""All tables, imported here so Alembic and relationships see one metadata."""

from bigfootlive.models.api_key import ApiKey
from bigfootlive.models.audit import AuditRecord
from bigfootlive.models.auth import AuthSession, RefreshToken, UserToken
from bigfootlive.models.chat import ChatBan, ChatMessage, ChatRoom
from bigfootlive.models.container import EventContainer, Lease, Recording
from bigfootlive.models.event import Event
from bigfootlive.models.mfa import MfaBackupCode, MfaFactor
from bigfootlive.models.sso import SsoIdentity, SsoProvider
from bigfootlive.models.tenant import Tenant, TenantDomain
from bigfootlive.models.user import Follow, PasswordHistory, User

__all__ = [
    "ApiKey",
    "AuditRecord",
    "AuthSession",
    "ChatBan",
    "ChatMessage",
    "ChatRoom",
    "Event",
    "EventContainer",
    "Follow",
    "Lease",
    "MfaBackupCode",
    "MfaFactor",
    "PasswordHistory",
    "Recording",
    "RefreshToken",
    "SsoIdentity",
    "SsoProvider",
    "Tenant",
    "TenantDomain",
    "User",
    "UserToken",
]
