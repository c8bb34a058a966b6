"""A tenant admin changes a member: role, enabled or disabled (ending their sessions). The
one implementation behind `PUT /api/tenant/users/{id}` and the admin console. Knows nothing of
HTTP."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.roles import Role
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.identity import repository as repo
from bigfootlive.identity.ports import IdentityState
from bigfootlive.identity.sessions import end_sessions
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import User
from bigfootlive.tenants import service as tenants


async def update_member(
    state: IdentityState,
    session: AsyncSession,
    meta: RequestMeta,
    actor: AuthSubject,
    user_id: uuid.UUID,
    *,
    role: Role | None = None,
    is_active: bool | None = None,
) -> User:
    """Change a member's role and/or status (audited); another tenant's member: not found.
    Only admins grant roles, never above their own; the last active admin stays one."""
    user = await repo.get_user(session, actor.tenant_id, user_id)
    if user is None:
        raise tenants.tenant_not_found()
    if role is not None:
        tenants.check_role_change(actor.role, actor.is_platform_admin, role)
    await tenants.ensure_not_last_admin(session, user, role, is_active)
    if role is not None and role.value != user.role:
        await AuditLog(session, meta, actor.user_id).record(
            AuditAction.TENANT_ROLE_CHANGE,
            tenant_id=user.tenant_id,
            target_type="user",
            target_id=user.id,
            details={"from": user.role, "to": role.value},
        )
        user.role = role.value
    if is_active is not None and is_active != user.is_active:
        user.is_active = is_active
        await AuditLog(session, meta, actor.user_id).record(
            AuditAction.TENANT_USER_STATUS,
            tenant_id=user.tenant_id,
            target_type="user",
            target_id=user.id,
            details={"active": is_active},
        )
        if not is_active:
            await end_sessions(
                state,
                session,
                meta,
                actor=actor,
                user=user,
                session_ids=await repo.active_session_ids(session, user.id),
                reason="account_disabled",
            )
    return user
