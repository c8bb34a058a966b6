"""Audit trail: append-only records of every security-relevant step.

`record` writes inside the caller's transaction (atomic with the change it describes).
`record_detached` writes in a transaction of its own, for failures whose request rolls back.
"""

from __future__ import annotations

import uuid
from typing import Any, TypedDict

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.db import Database
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import AuditRecord, User
from bigfootlive.observability.metrics import AUTH_EVENTS


def _build(
    *,
    action: str,
    meta: RequestMeta | None,
    tenant_id: uuid.UUID | None,
    actor_id: uuid.UUID | None,
    result: str,
    target_type: str | None,
    target_id: object | None,
    details: dict[str, Any] | None,
) -> AuditRecord:
    if action.startswith("auth."):
        AUTH_EVENTS.labels(action, result).inc()
    return AuditRecord(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        actor_id=actor_id,
        action=action,
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
    actor_id: uuid.UUID
    target_type: str
    target_id: uuid.UUID


def own_account(user: User) -> OwnAccount:
    """The audit fields of a user acting on their own account (actor and target are the user):
    `await audit.record(session, action=..., meta=meta, **audit.own_account(user))`."""
    return OwnAccount(
        tenant_id=user.tenant_id, actor_id=user.id, target_type="user", target_id=user.id
    )


async def record(
    session: AsyncSession,
    *,
    action: str,
    meta: RequestMeta | None,
    tenant_id: uuid.UUID | None,
    actor_id: uuid.UUID | None,
    result: str = "success",
    target_type: str | None = None,
    target_id: object | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        _build(
            action=action,
            meta=meta,
            tenant_id=tenant_id,
            actor_id=actor_id,
            result=result,
            target_type=target_type,
            target_id=target_id,
            details=details,
        )
    )


async def record_detached(
    db: Database,
    *,
    action: str,
    meta: RequestMeta | None,
    tenant_id: uuid.UUID | None,
    actor_id: uuid.UUID | None,
    result: str = "failure",
    target_type: str | None = None,
    target_id: object | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    async with db.transaction() as session:
        session.add(
            _build(
                action=action,
                meta=meta,
                tenant_id=tenant_id,
                actor_id=actor_id,
                result=result,
                target_type=target_type,
                target_id=target_id,
                details=details,
            )
        )
