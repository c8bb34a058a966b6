"""Answering MFA challenges: at sign-in, and step-up ahead of a sensitive action.

Wrong answers count against the challenge and the user (either locks at its limit); a right one
is used once and either starts the session (sign-in) or refreshes the session's MFA (step-up).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, NoReturn

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog, own_account
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.db import utcnow
from bigfootlive.errors import BadRequest, Forbidden
from bigfootlive.identity import repository as identity_repo
from bigfootlive.identity import sessions
from bigfootlive.identity.schemas import MfaChallenge, TokenPair
from bigfootlive.kit.request import RequestMeta
from bigfootlive.mfa import challenges, policy
from bigfootlive.mfa.base import (
    Answer,
    ChallengeLocked,
    FactorNotFound,
    InvalidChallenge,
    InvalidCode,
    MfaLocked,
    rules_of,
)
from bigfootlive.mfa.challenges import Challenge
from bigfootlive.mfa.factors.registry import factor_of, method_of
from bigfootlive.mfa.ports import MfaState
from bigfootlive.mfa.schemas import ChallengePrepareOut, StepUpOut
from bigfootlive.models import AuthSession, MfaFactor, Tenant, User
from bigfootlive.tenants import service as tenants
from bigfootlive.tenants.schemas import MfaPolicy


async def _load_challenge(state: MfaState, token: str) -> Challenge:
    challenge = await challenges.load(state, token)
    if challenge is None:
        raise InvalidChallenge()
    if challenge.purpose == "enroll":
        raise BadRequest(
            "This sign-in needs a factor set up first: use /api/auth/mfa/setup",
            code="mfa_enrollment_required",
        )
    return challenge


async def _challenge_user(
    session: AsyncSession, challenge: Challenge
) -> tuple[User, Tenant, MfaPolicy]:
    user = await identity_repo.get_user(session, challenge.tenant_id, challenge.user_id)
    tenant = await tenants.get_tenant(session, challenge.tenant_id)
    if user is None or tenant is None or not user.is_active or not tenant.is_active:
        raise InvalidChallenge()
    return user, tenant, rules_of(tenant)


async def challenge_factors(
    state: MfaState, session: AsyncSession, *, token: str
) -> list[MfaFactor]:
    """The factors that may answer this challenge (what `prepare_challenge` accepts)."""
    challenge = await _load_challenge(state, token)
    user, _, rules = await _challenge_user(session, challenge)
    return list(await policy.usable_factors(session, user, rules))


async def prepare_challenge(
    state: MfaState,
    session: AsyncSession,
    meta: RequestMeta,
    *,
    token: str,
    factor_id: uuid.UUID,
) -> ChallengePrepareOut:
    """Send the code (email, SMS) or the WebAuthn request options for one factor."""
    challenge = await _load_challenge(state, token)
    user, _, rules = await _challenge_user(session, challenge)
    factors = await policy.usable_factors(session, user, rules)
    factor = next((f for f in factors if f.id == factor_id), None)
    if factor is None:
        raise FactorNotFound()
    out = ChallengePrepareOut(factor_id=factor.id, type=factor.type, expires_in=int(challenge.ttl))
    await factor_of(factor.type).prepare(
        state, session, meta, challenge, user, factor, factors, out
    )
    return out


async def verify(
    state: MfaState,
    session: AsyncSession,
    meta: RequestMeta,
    *,
    token: str,
    method: str,
    factor_id: uuid.UUID | None,
    code: str | None,
    credential: dict[str, Any] | None,
    password: str | None,
) -> TokenPair | StepUpOut:
    challenge = await _load_challenge(state, token)
    user, tenant, rules = await _challenge_user(session, challenge)
    settings = state.settings
    user_fails_key = f"mfa:userfail:{user.id}"
    seen = await state.cache.get(user_fails_key)
    if seen is not None and int(seen) >= settings.mfa_user_failure_limit:
        await AuditLog.detached(state.db, meta, user.id).record(
            AuditAction.AUTH_MFA_VERIFY,
            details={"method": method, "reason": "user_locked"},
            **own_account(user),
        )
        raise MfaLocked(retry_after=settings.mfa_user_failure_window_seconds)
    factors = await policy.usable_factors(session, user, rules)
    proving = method_of(method)
    factor = await proving.prove(
        state,
        session,
        challenge,
        user,
        rules,
        factors,
        Answer(factor_id=factor_id, code=code, credential=credential, password=password),
    )
    if factor is False:
        # Nothing of this request is kept; ending its transaction now frees SQLite's write lock
        # for the failure's own audit transaction.
        tenant_id, user_id = user.tenant_id, user.id  # rollback expires the ORM objects
        await session.rollback()
        await _count_failure(state, meta, challenge, tenant_id, user_id, method, user_fails_key)
    if not await challenges.consume(state, challenge):
        raise InvalidChallenge()
    now = utcnow()
    target_id: object = user.id
    if isinstance(factor, MfaFactor):
        factor.last_used_at = now
        target_id = factor.id
    await AuditLog(session, meta, user.id).record(
        AuditAction.AUTH_MFA_VERIFY,
        tenant_id=user.tenant_id,
        target_type="mfa_factor" if isinstance(factor, MfaFactor) else "user",
        target_id=target_id,
        details={"method": method, "purpose": challenge.purpose},
    )
    await proving.on_verified(state, session, meta, user)
    amr = policy.with_factor(challenge.amr, method)
    if challenge.purpose == "login":
        return await sessions.start_session(
            state, session, user=user, tenant=tenant, meta=meta, amr=amr
        )
    return await _step_up(state, session, meta, challenge, user, now, method)


async def _count_failure(
    state: MfaState,
    meta: RequestMeta,
    challenge: Challenge,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    method: str,
    user_fails_key: str,
) -> NoReturn:
    """Count a wrong answer against the challenge and the user; lock either at its limit."""
    settings = state.settings
    failures = await challenges.count_failure(state, challenge)
    await state.cache.incr(user_fails_key, ttl=settings.mfa_user_failure_window_seconds)
    await AuditLog.detached(state.db, meta, user_id).record(
        AuditAction.AUTH_MFA_VERIFY,
        tenant_id=tenant_id,
        target_type="user",
        target_id=user_id,
        details={"method": method, "purpose": challenge.purpose, "failures": failures},
    )
    if failures >= settings.mfa_max_attempts:
        await challenges.discard(state, challenge)
        await AuditLog.detached(state.db, meta, user_id).record(
            AuditAction.AUTH_MFA_LOCKED,
            tenant_id=tenant_id,
            target_type="user",
            target_id=user_id,
            details={"purpose": challenge.purpose, "failures": failures},
        )
        raise ChallengeLocked()
    raise InvalidCode(attempts_left=settings.mfa_max_attempts - failures)


async def _step_up(
    state: MfaState,
    session: AsyncSession,
    meta: RequestMeta,
    challenge: Challenge,
    user: User,
    now: dt.datetime,
    method: str,
) -> StepUpOut:
    auth_session = await session.get(AuthSession, challenge.session_id)
    if (
        auth_session is None
        or auth_session.user_id != user.id
        or auth_session.revoked_at is not None
        or auth_session.expires_at <= now
    ):
        raise InvalidChallenge("The session has ended; sign in again")
    amr = policy.with_factor(auth_session.amr.split(), method)
    auth_session.amr = " ".join(amr)
    auth_session.auth_time = now
    auth_session.last_seen_at = now
    roles = [user.role, *(["platform_admin"] if user.is_platform_admin else [])]
    access, _ = state.tokens.issue(
        user_id=user.id,
        tenant_id=user.tenant_id,
        session_id=auth_session.id,
        roles=roles,
        amr=amr,
        auth_time=now,
    )
    await AuditLog(session, meta, user.id).record(
        AuditAction.AUTH_MFA_STEP_UP,
        tenant_id=user.tenant_id,
        target_type="session",
        target_id=auth_session.id,
        details={"method": method, "amr": amr},
    )
    return StepUpOut(access_token=access, expires_in=state.tokens.ttl, amr=amr)


async def start_step_up(
    state: MfaState, session: AsyncSession, meta: RequestMeta, subject: AuthSubject
) -> MfaChallenge:
    """A step-up challenge on request, ahead of a sensitive action."""
    tenant = await tenants.require_tenant(session, subject.tenant_id)
    rules = rules_of(tenant)
    factors = await policy.usable_factors(session, subject.user, rules)
    if not factors and rules.mode != "off" and rules.required_for(subject.role):
        raise Forbidden(
            "Your organisation requires MFA: set up a factor first",
            code="mfa_enrollment_required",
        )
    challenge = await policy.step_up_challenge(state, session, subject, rules, factors)
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.AUTH_MFA_CHALLENGE,
        tenant_id=subject.tenant_id,
        target_type="session",
        target_id=subject.session_id,
        details={"purpose": "step_up", "factors": [f.type for f in factors]},
    )
    return challenge
