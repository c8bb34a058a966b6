"""The audit trail: append-only records of every security-relevant step.

    await AuditLog(session, meta, actor_id).record(AuditAction.EVENT_CREATE, tenant_id=..., ...)

`AuditLog(session, ...)` writes inside the caller's transaction (atomic with the change it
describes); `AuditLog.detached(db, ...)` writes in a transaction of its own, for failures whose
request rolls back. A low-level package: it knows the database, the models and `RequestMeta`.
"""

from bigfootlive.audit.actions import AuditAction
from bigfootlive.audit.log import (
    AuditLog,
    DetachedAuditLog,
    OwnAccount,
    count_audited,
    own_account,
)

__all__ = [
    "AuditAction",
    "AuditLog",
    "DetachedAuditLog",
    "OwnAccount",
    "count_audited",
    "own_account",
]
