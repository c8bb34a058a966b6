"""Recovery: an administrator resets the second factors of a member who lost their device."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.errors import NotFound
from bigfootlive.identity import repository as identity_repo
from bigfootlive.kit.request import RequestMeta
from bigfootlive.mfa import repository as repo
from bigfootlive.mfa.base import notify
from bigfootlive.mfa.ports import MfaState


async def admin_reset(
    state: MfaState,
    session: AsyncSession,
    meta: RequestMeta,
    actor: AuthSubject,
    user_id: uuid.UUID,
) -> int:
    """Remove every factor and backup code of a member (they lost their device)."""
    user = await identity_repo.get_user(session, actor.tenant_id, user_id)
    if user is None:
        raise NotFound("No such user", code="user_not_found")
    removed = await repo.delete_factors(session, user.tenant_id, user.id)
    await repo.delete_backup_codes(session, user.tenant_id, user.id)
    await AuditLog(session, meta, actor.user_id).record(
        AuditAction.AUTH_MFA_RESET,
        tenant_id=user.tenant_id,
        target_type="user",
        target_id=user.id,
        details={"factors_removed": removed},
    )
    notify(
        state,
        session,
        user,
        "Your two-step verification was reset",
        "An administrator of your organisation removed all second factors from your "
        "BigfootLive account. You may be asked to set one up at your next sign-in. "
        "If you did not ask for this, contact your administrator now.",
    )
    return removed
