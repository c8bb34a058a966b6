"""`AuditLog`: the audit writer bound to (session, request meta, actor)."""

from __future__ import annotations

import uuid
from typing import Any, TypedDict

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit.actions import AuditAction
from bigfootlive.db import Database, utcnow
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import AuditRecord, User
from bigfootlive.observability.metrics import (
    AUTH_EVENTS,
    LOCKOUTS,
    LOGIN_FAILURE_REASONS,
    LOGIN_FAILURES,
)


def count_audited(action: AuditAction, result: str, details: dict[str, Any] | None) -> None:
    """The metrics of an audited action: every record counts, including one written without
    building an `AuditRecord` (the password sign-in's, by `bfl_sign_in_write`)."""
    if action.startswith("auth."):
        AUTH_EVENTS.labels(action.value, result).inc()
        if action == AuditAction.AUTH_LOGIN and result == "failure":
            reason = str((details or {}).get("reason", ""))
            LOGIN_FAILURES.labels(reason if reason in LOGIN_FAILURE_REASONS else "other").inc()
        elif action in (AuditAction.AUTH_LOCKOUT, AuditAction.AUTH_MFA_LOCKED):
            LOCKOUTS.labels("mfa" if action == AuditAction.AUTH_MFA_LOCKED else "password").inc()


def _build(
    *,
    action: AuditAction,
    meta: RequestMeta | None,
    tenant_id: uuid.UUID | None,
    actor_id: uuid.UUID | None,
    result: str,
    target_type: str | None,
    target_id: object | None,
    details: dict[str, Any] | None,
) -> AuditRecord:
    count_audited(action, result, details)
    return AuditRecord(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        actor_id=actor_id,
        action=action.value,
        result=result,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        ip=meta.ip if meta else "",
        user_agent=meta.user_agent if meta else "",
        request_id=meta.request_id if meta else "",
        details=details or {},
    )


class OwnAccount(TypedDict):
    tenant_id: uuid.UUID
    target_type: str
    target_id: uuid.UUID


def own_account(user: User) -> OwnAccount:
    """The audit fields of a user acting on their own account (the target is the actor):
    `await AuditLog(session, meta, user.id).record(AuditAction.X, **own_account(user))`."""
    return OwnAccount(tenant_id=user.tenant_id, target_type="user", target_id=user.id)


class AuditLog:
    """Writes audit records inside the caller's transaction (atomic with the change)."""

    __slots__ = ("actor_id", "meta", "session")

    def __init__(
        self, session: AsyncSession, meta: RequestMeta | None, actor_id: uuid.UUID | None
    ) -> None:
        self.session = session
        self.meta = meta
        self.actor_id = actor_id

    @staticmethod
    def detached(
        db: Database, meta: RequestMeta | None, actor_id: uuid.UUID | None
    ) -> DetachedAuditLog:
        return DetachedAuditLog(db, meta, actor_id)

    def build(
        self,
        action: AuditAction,
        *,
        tenant_id: uuid.UUID | None,
        result: str = "success",
        target_type: str | None = None,
        target_id: object | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditRecord:
        """The record `record` would add, dated now, for the caller to write with the rows
        of its change (counted in the metrics like any)."""
        row = _build(
            action=action,
            meta=self.meta,
            tenant_id=tenant_id,
            actor_id=self.actor_id,
            result=result,
            target_type=target_type,
            target_id=target_id,
            details=details,
        )
        row.created_at = utcnow()
        return row

    async def record(
        self,
        action: AuditAction,
        *,
        tenant_id: uuid.UUID | None,
        result: str = "success",
        target_type: str | None = None,
        target_id: object | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.session.add(
            self.build(
                action,
                tenant_id=tenant_id,
                result=result,
                target_type=target_type,
                target_id=target_id,
                details=details,
            )
        )


class DetachedAuditLog:
    """Writes each record in a transaction of its own, for failures whose request rolls back."""

    __slots__ = ("actor_id", "db", "meta")

    def __init__(self, db: Database, meta: RequestMeta | None, actor_id: uuid.UUID | None) -> None:
        self.db = db
        self.meta = meta
        self.actor_id = actor_id

    async def record(
        self,
        action: AuditAction,
        *,
        tenant_id: uuid.UUID | None,
        result: str = "failure",
        target_type: str | None = None,
        target_id: object | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        async with self.db.transaction() as session:
            session.add(
                _build(
                    action=action,
                    meta=self.meta,
                    tenant_id=tenant_id,
                    actor_id=self.actor_id,
                    result=result,
                    target_type=target_type,
                    target_id=target_id,
                    details=details,
                )
            )
