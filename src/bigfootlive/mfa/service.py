"""Second factors: enrolment, sign-in and step-up verification, backup codes, recovery."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.authz.deps import AuthSubject
from bigfootlive.authz.roles import Role
from bigfootlive.db import utcnow
from bigfootlive.deps import RequestMeta
from bigfootlive.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from bigfootlive.identity import audit
from bigfootlive.identity import repository as identity_repo
from bigfootlive.identity import service as identity
from bigfootlive.identity.schemas import MfaChallenge, TokenPair
from bigfootlive.mfa import challenges, policy
from bigfootlive.mfa import repository as repo
from bigfootlive.mfa.base import (
    ChallengeLocked,
    FactorNotFound,
    InvalidChallenge,
    InvalidCode,
    MfaLocked,
    notify,
    rules_of,
)
from bigfootlive.mfa.challenges import Challenge
from bigfootlive.mfa.factors.backup_codes import replace_backup_codes
from bigfootlive.mfa.factors.registry import factor_of, factor_out, method_of
from bigfootlive.mfa.schemas import ChallengePrepareOut, ConfirmOut, FactorList, SetupOut, StepUpOut
from bigfootlive.models import AuthSession, MfaFactor, Tenant, User
from bigfootlive.state import AppState
from bigfootlive.tenants import service as tenants
from bigfootlive.tenants.schemas import MfaPolicy

MAX_FACTORS_PER_USER = 10


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is managing factors: a signed-in subject, or a user in an enrolment challenge."""

    user: User
    tenant: Tenant
    subject: AuthSubject | None = None
    challenge: Challenge | None = None


async def resolve_actor(
    state: AppState,
    session: AsyncSession,
    *,
    subject: AuthSubject | None,
    challenge_token: str | None,
) -> Actor:
    """A bearer token, or the enrolment challenge handed out at sign-in (guided setup)."""
    if challenge_token is not None:
        challenge = await challenges.load(state, challenge_token)
        if challenge is None or challenge.purpose != "enroll":
            raise InvalidChallenge()
        user = await identity_repo.get_user(session, challenge.tenant_id, challenge.user_id)
        tenant = await tenants.get_tenant(session, challenge.tenant_id)
        if user is None or tenant is None or not user.is_active:
            raise InvalidChallenge()
        return Actor(user=user, tenant=tenant, challenge=challenge)
    if subject is None:
        raise Unauthorized()
    tenant = await tenants.require_tenant(session, subject.tenant_id)
    return Actor(user=subject.user, tenant=tenant, subject=subject)


async def start_setup(
    state: AppState,
    session: AsyncSession,
    meta: RequestMeta,
    actor: Actor,
    *,
    factor_type: str,
    name: str | None,
    phone: str | None,
) -> SetupOut:
    user = actor.user
    rules = rules_of(actor.tenant)
    if rules.mode == "off":
        raise Forbidden("MFA is turned off for this organisation", code="mfa_disabled")
    if factor_type not in rules.allowed_factors:
        raise Forbidden(
            "This organisation does not allow this kind of factor",
            code="factor_type_not_allowed",
            allowed=list(rules.allowed_factors),
        )
    if actor.subject is not None and await policy.usable_factors(session, user, rules):
        # Adding a factor to an account that has one is itself a sensitive action.
        await policy.ensure_recent_mfa(state, session, meta, actor.subject)
    ttl = state.settings.mfa_challenge_ttl_seconds
    setup_window = max(ttl, state.settings.mfa_code_ttl_seconds)
    await repo.delete_abandoned_setups(
        session, user.tenant_id, user.id, utcnow() - dt.timedelta(seconds=setup_window)
    )
    if await repo.count_factors(session, user.tenant_id, user.id) >= MAX_FACTORS_PER_USER:
        raise Conflict(
            f"At most {MAX_FACTORS_PER_USER} factors per account; remove one first",
            code="too_many_factors",
        )
    kind = factor_of(factor_type)
    factor = MfaFactor(
        id=uuid.uuid4(),
        tenant_id=user.tenant_id,
        user_id=user.id,
        type=factor_type,
        name=name or kind.default_name,
        created_at=utcnow(),
    )
    out = SetupOut(factor=factor_out(factor), expires_in=ttl)
    await kind.setup(state, session, user, factor, out, phone=phone)
    session.add(factor)
    await session.flush()
    await kind.after_setup(state, user, factor, out)
    out.factor = factor_out(factor)
    await audit.record(
        session,
        action="auth.mfa.setup",
        meta=meta,
        tenant_id=user.tenant_id,
        actor_id=user.id,
        target_type="mfa_factor",
        target_id=factor.id,
        details={"type": factor_type, "via": "challenge" if actor.challenge else "session"},
    )
    return out


async def confirm_setup(
    state: AppState,
    session: AsyncSession,
    meta: RequestMeta,
    actor: Actor,
    *,
    factor_id: uuid.UUID,
    code: str | None,
    credential: dict[str, Any] | None,
) -> ConfirmOut:
    user = actor.user
    factor = await repo.get_factor(session, user.tenant_id, user.id, factor_id)
    if factor is None:
        raise FactorNotFound()
    if factor.confirmed_at is not None:
        raise Conflict("This factor is already confirmed", code="factor_already_confirmed")
    fails_key = f"mfa:enrol:{factor.id}:fails"
    seen = await state.cache.get(fails_key)
    if seen is not None and int(seen) >= state.settings.mfa_max_attempts:
        raise ChallengeLocked("Too many wrong codes; start the setup again")
    ok = await factor_of(factor.type).confirm(state, factor, code=code, credential=credential)
    if not ok:
        failures = await state.cache.incr(fails_key, ttl=state.settings.mfa_challenge_ttl_seconds)
        await audit.record_detached(
            state.db,
            action="auth.mfa.enrol",
            meta=meta,
            tenant_id=user.tenant_id,
            actor_id=user.id,
            target_type="mfa_factor",
            target_id=factor.id,
            details={"type": factor.type, "failures": failures},
        )
        raise InvalidCode(attempts_left=max(0, state.settings.mfa_max_attempts - failures))
    had_factor = bool(await repo.user_factors(session, user.tenant_id, user.id))
    now = utcnow()
    factor.confirmed_at = now
    await state.cache.delete(fails_key)
    await audit.record(
        session,
        action="auth.mfa.enrol",
        meta=meta,
        tenant_id=user.tenant_id,
        actor_id=user.id,
        target_type="mfa_factor",
        target_id=factor.id,
        details={"type": factor.type, "name": factor.name},
    )
    notify(
        state,
        session,
        user,
        "A sign-in method was added to your account",
        f"A new second factor ({factor.name}, {factor.type}) was added to your BigfootLive "
        "account. If this was not you, contact your administrator now.",
    )
    out = ConfirmOut(factor=factor_out(factor))
    rules = rules_of(actor.tenant)
    if not had_factor and rules.allow_backup_codes:
        out.backup_codes = await replace_backup_codes(state, session, user)
    if actor.challenge is not None:
        if not await challenges.consume(state, actor.challenge):
            raise InvalidChallenge()
        method = factor.type
        factor.last_used_at = now
        await audit.record(
            session,
            action="auth.mfa.verify",
            meta=meta,
            tenant_id=user.tenant_id,
            actor_id=user.id,
            target_type="mfa_factor",
            target_id=factor.id,
            details={"method": method, "purpose": "enroll"},
        )
        out.session = await identity.start_session(
            state,
            session,
            user=user,
            tenant=actor.tenant,
            meta=meta,
            amr=policy.with_factor(actor.challenge.amr, method),
        )
    return out


async def list_factors(session: AsyncSession, subject: AuthSubject) -> FactorList:
    factors = await repo.user_factors(
        session, subject.tenant_id, subject.user_id, confirmed_only=False
    )
    return FactorList(
        factors=[factor_out(f) for f in factors],
        backup_codes_remaining=await repo.unused_backup_codes(
            session, subject.tenant_id, subject.user_id
        ),
    )


async def delete_factor(
    state: AppState,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    factor_id: uuid.UUID,
) -> None:
    user = subject.user
    factor = await repo.get_factor(session, user.tenant_id, user.id, factor_id)
    if factor is None:
        raise FactorNotFound()
    confirmed = await repo.user_factors(session, user.tenant_id, user.id)
    remaining = [f for f in confirmed if f.id != factor.id]
    tenant = await tenants.require_tenant(session, user.tenant_id)
    rules = rules_of(tenant)
    if (
        factor.confirmed_at is not None
        and not remaining
        and rules.mode != "off"
        and rules.required_for(Role(user.role))
    ):
        raise Conflict(
            "Your organisation requires MFA: add another factor before removing the last one",
            code="last_required_factor",
        )
    await session.delete(factor)
    if not remaining:
        await repo.delete_backup_codes(session, user.tenant_id, user.id)
    await audit.record(
        session,
        action="auth.mfa.factor_delete",
        meta=meta,
        tenant_id=user.tenant_id,
        actor_id=user.id,
        target_type="mfa_factor",
        target_id=factor.id,
        details={"type": factor.type, "name": factor.name},
    )
    if factor.confirmed_at is not None:
        notify(
            state,
            session,
            user,
            "A sign-in method was removed from your account",
            f"The second factor {factor.name} ({factor.type}) was removed from your BigfootLive "
            "account. If this was not you, contact your administrator now.",
        )


async def _load_challenge(state: AppState, token: str) -> Challenge:
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


async def prepare_challenge(
    state: AppState,
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
    state: AppState,
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
        await audit.record_detached(
            state.db,
            action="auth.mfa.verify",
            meta=meta,
            details={"method": method, "reason": "user_locked"},
            **audit.own_account(user),
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
        factor_id=factor_id,
        code=code,
        credential=credential,
        password=password,
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
    await audit.record(
        session,
        action="auth.mfa.verify",
        meta=meta,
        tenant_id=user.tenant_id,
        actor_id=user.id,
        target_type="mfa_factor" if isinstance(factor, MfaFactor) else "user",
        target_id=target_id,
        details={"method": method, "purpose": challenge.purpose},
    )
    await proving.on_verified(state, session, meta, user)
    amr = policy.with_factor(challenge.amr, method)
    if challenge.purpose == "login":
        return await identity.start_session(
            state, session, user=user, tenant=tenant, meta=meta, amr=amr
        )
    return await _step_up(state, session, meta, challenge, user, now, method)


async def _count_failure(
    state: AppState,
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
    await audit.record_detached(
        state.db,
        action="auth.mfa.verify",
        meta=meta,
        tenant_id=tenant_id,
        actor_id=user_id,
        target_type="user",
        target_id=user_id,
        details={"method": method, "purpose": challenge.purpose, "failures": failures},
    )
    if failures >= settings.mfa_max_attempts:
        await challenges.discard(state, challenge)
        await audit.record_detached(
            state.db,
            action="auth.mfa.locked",
            meta=meta,
            tenant_id=tenant_id,
            actor_id=user_id,
            target_type="user",
            target_id=user_id,
            details={"purpose": challenge.purpose, "failures": failures},
        )
        raise ChallengeLocked()
    raise InvalidCode(attempts_left=settings.mfa_max_attempts - failures)


async def _step_up(
    state: AppState,
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
    await audit.record(
        session,
        action="auth.mfa.step_up",
        meta=meta,
        tenant_id=user.tenant_id,
        actor_id=user.id,
        target_type="session",
        target_id=auth_session.id,
        details={"method": method, "amr": amr},
    )
    return StepUpOut(access_token=access, expires_in=state.tokens.ttl, amr=amr)


async def start_step_up(
    state: AppState, session: AsyncSession, meta: RequestMeta, subject: AuthSubject
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
    await audit.record(
        session,
        action="auth.mfa.challenge",
        meta=meta,
        tenant_id=subject.tenant_id,
        actor_id=subject.user_id,
        target_type="session",
        target_id=subject.session_id,
        details={"purpose": "step_up", "factors": [f.type for f in factors]},
    )
    return challenge


async def admin_reset(
    state: AppState,
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
    await audit.record(
        session,
        action="auth.mfa.reset",
        meta=meta,
        tenant_id=user.tenant_id,
        actor_id=actor.user_id,
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
