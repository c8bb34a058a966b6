"""Backup codes: ten one-time codes for when no factor is at hand, stored as keyed hashes."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog, own_account
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.db import utcnow
from bigfootlive.errors import Conflict, Forbidden
from bigfootlive.kit.request import RequestMeta
from bigfootlive.mfa import codes
from bigfootlive.mfa import repository as repo
from bigfootlive.mfa.base import Answer, notify, rules_of
from bigfootlive.mfa.challenges import Challenge
from bigfootlive.mfa.ports import MfaState
from bigfootlive.models import MfaBackupCode, MfaFactor, User
from bigfootlive.tenants import service as tenants
from bigfootlive.tenants.schemas import MfaPolicy


async def replace_backup_codes(state: MfaState, session: AsyncSession, user: User) -> list[str]:
    await repo.delete_backup_codes(session, user.tenant_id, user.id)
    fresh = codes.new_backup_codes()
    key = state.settings.data_keys[0]
    for code in fresh:
        session.add(
            MfaBackupCode(
                tenant_id=user.tenant_id,
                user_id=user.id,
                code_hash=codes.backup_code_hash(key, user.id, code),
            )
        )
    return fresh


async def regenerate_backup_codes(
    state: MfaState, session: AsyncSession, meta: RequestMeta, subject: AuthSubject
) -> list[str]:
    user = subject.user
    tenant = await tenants.require_tenant(session, user.tenant_id)
    rules = rules_of(tenant)
    if not rules.allow_backup_codes or rules.mode == "off":
        raise Forbidden("Backup codes are turned off", code="backup_codes_disabled")
    if not await repo.user_factors(session, user.tenant_id, user.id):
        raise Conflict("Set up a second factor first", code="no_factor")
    fresh = await replace_backup_codes(state, session, user)
    await AuditLog(session, meta, user.id).record(
        AuditAction.AUTH_MFA_BACKUP_CODES, details={"count": len(fresh)}, **own_account(user)
    )
    return fresh


class BackupCodes:
    """The `backup_code` method of verification (backup codes are not an enrolled factor)."""

    async def prove(
        self,
        state: MfaState,
        session: AsyncSession,
        challenge: Challenge,
        user: User,
        rules: MfaPolicy,
        factors: Sequence[MfaFactor],
        answer: Answer,
    ) -> MfaFactor | bool:
        if not factors or not rules.allow_backup_codes or not answer.code:
            return False
        candidates = codes.backup_code_candidates(state.settings.data_keys, user.id, answer.code)
        return await repo.claim_backup_code(session, user.tenant_id, user.id, candidates, utcnow())

    async def on_verified(
        self, state: MfaState, session: AsyncSession, meta: RequestMeta, user: User
    ) -> None:
        remaining = await repo.unused_backup_codes(session, user.tenant_id, user.id)
        await AuditLog(session, meta, user.id).record(
            AuditAction.AUTH_MFA_BACKUP_CODE_USED,
            details={"remaining": remaining},
            **own_account(user),
        )
        notify(
            state,
            session,
            user,
            "A backup code was used",
            f"A backup code was used to verify your BigfootLive account; {remaining} remain. "
            "If this was not you, contact your administrator now.",
        )
