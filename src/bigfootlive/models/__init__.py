"""All tables, imported here so Alembic and relationships see one metadata."""

from bigfootlive.models.audit import AuditRecord
from bigfootlive.models.auth import AuthSession, RefreshToken, UserToken
from bigfootlive.models.jobs import DeadJob, JobKey
from bigfootlive.models.notification import NotificationPreference
from bigfootlive.models.tenant import Tenant, TenantDomain
from bigfootlive.models.user import Follow, PasswordHistory, User
from bigfootlive.models.webhook import WebhookDelivery, WebhookEndpoint

__all__ = [
    "AuditRecord",
    "AuthSession",
    "DeadJob",
    "Follow",
    "JobKey",
    "NotificationPreference",
    "PasswordHistory",
    "RefreshToken",
    "Tenant",
    "TenantDomain",
    "User",
    "UserToken",
    "WebhookDelivery",
    "WebhookEndpoint",
]
