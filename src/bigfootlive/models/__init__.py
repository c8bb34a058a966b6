"""All tables, imported here so Alembic and relationships see one metadata."""

from bigfootlive.models.analytics import (
    AnalyticsHealthMinute,
    AnalyticsMinute,
    AnalyticsViewer,
    EventSummary,
)
from bigfootlive.models.api_key import ApiKey
from bigfootlive.models.audit import AuditRecord
from bigfootlive.models.auth import (
    AuthSession,
    LoginLockout,
    PendingRegistration,
    RefreshToken,
    UserToken,
)
from bigfootlive.models.chat import ChatBan, ChatMessage, ChatRoom
from bigfootlive.models.clip import Clip
from bigfootlive.models.container import EventContainer, Lease, Recording
from bigfootlive.models.event import Event
from bigfootlive.models.jobs import DeadJob, JobKey, JobOutbox
from bigfootlive.models.mfa import MfaBackupCode, MfaFactor
from bigfootlive.models.notification import NotificationPreference
from bigfootlive.models.simulcast import SimulcastDestination
from bigfootlive.models.sso import SsoIdentity, SsoProvider
from bigfootlive.models.tenant import Tenant, TenantDomain
from bigfootlive.models.user import Follow, PasswordHistory, User
from bigfootlive.models.webhook import WebhookDelivery, WebhookEndpoint

__all__ = [
    "AnalyticsHealthMinute",
    "AnalyticsMinute",
    "AnalyticsViewer",
    "ApiKey",
    "AuditRecord",
    "AuthSession",
    "ChatBan",
    "ChatMessage",
    "ChatRoom",
    "Clip",
    "DeadJob",
    "Event",
    "EventContainer",
    "EventSummary",
    "Follow",
    "JobKey",
    "JobOutbox",
    "Lease",
    "LoginLockout",
    "MfaBackupCode",
    "MfaFactor",
    "NotificationPreference",
    "PasswordHistory",
    "PendingRegistration",
    "Recording",
    "RefreshToken",
    "SimulcastDestination",
    "SsoIdentity",
    "SsoProvider",
    "Tenant",
    "TenantDomain",
    "User",
    "UserToken",
    "WebhookDelivery",
    "WebhookEndpoint",
]
