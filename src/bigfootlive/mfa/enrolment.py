"""A user's second factors: setup and confirmation (also guided, from a sign-in), list, removal."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.roles import Role
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.db import utcnow
from bigfootlive.errors import Conflict, Forbidden, Unauthorized
from bigfootlive.identity import repository as identity_repo
from bigfootlive.identity import sessions
from bigfootlive.kit.request import RequestMeta
from bigfootlive.mfa import challenges, policy
from bigfootlive.mfa import repository as repo
from bigfootlive.mfa.base import (
    ChallengeLocked,
    FactorNotFound,
    InvalidChallenge,
    InvalidCode,
    notify,
    rules_of,
)
from bigfootlive.mfa.challenges import Challenge
from bigfootlive.mfa.factors.backup_codes import replace_backup_codes
from bigfootlive.mfa.factors.registry import factor_of, factor_out, shown_name
from bigfootlive.mfa.factors.totp import TotpFactor
from bigfootlive.mfa.ports import MfaState
from bigfootlive.mfa.schemas import ConfirmOut, FactorList, SetupOut
from bigfootlive.models import MfaFactor, Tenant, User
from bigfootlive.tenants import service as tenants

MAX_FACTORS_PER_USER = 10


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is managing factors: a signed-in subject, or a user in an enrolment challenge."""

    user: User
    tenant: Tenant
    subject: AuthSubject | None = None
    challenge: Challenge | None = None


def _fails_key(factor_id: uuid.UUID) -> str:
    """The wrong codes given to confirm a factor's set-up (counted, up to `mfa_max_attempts`)."""
    return f"mfa:enrol:{factor_id}:fails"


async def resolve_actor(
    state: MfaState,
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
    state: MfaState,
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
    await AuditLog(session, meta, user.id).record(
        AuditAction.AUTH_MFA_SETUP,
        tenant_id=user.tenant_id,
        target_type="mfa_factor",
        target_id=factor.id,
        details={"type": factor_type, "via": "challenge" if actor.challenge else "session"},
    )
    return out


async def confirm_setup(
    state: MfaState,
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
    fails_key = _fails_key(factor.id)
    seen = await state.cache.get(fails_key)
    if seen is not None and int(seen) >= state.settings.mfa_max_attempts:
        raise ChallengeLocked("Too many wrong codes; start the setup again")
    ok = await factor_of(factor.type).confirm(state, factor, code=code, credential=credential)
    if not ok:
        failures = await state.cache.incr(fails_key, ttl=state.settings.mfa_challenge_ttl_seconds)
        await AuditLog.detached(state.db, meta, user.id).record(
            AuditAction.AUTH_MFA_ENROL,
            tenant_id=user.tenant_id,
            target_type="mfa_factor",
            target_id=factor.id,
            details={"type": factor.type, "failures": failures},
        )
        raise InvalidCode(attempts_left=max(0, state.settings.mfa_max_attempts - failures))
    had_factor = bool(await repo.user_factors(session, user.tenant_id, user.id))
    now = utcnow()
    factor.confirmed_at = now
    await state.cache.delete(fails_key)
    await AuditLog(session, meta, user.id).record(
        AuditAction.AUTH_MFA_ENROL,
        tenant_id=user.tenant_id,
        target_type="mfa_factor",
        target_id=factor.id,
        details={"type": factor.type, "name": factor.name},
    )
    notify(
        state,
        session,
        user,
        "A sign-in method was added to your account",
        f"A new second factor was added to your BigfootLive account: {shown_name(factor)}. "
        "If this was not you, contact your administrator now.",
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
        await AuditLog(session, meta, user.id).record(
            AuditAction.AUTH_MFA_VERIFY,
            tenant_id=user.tenant_id,
            target_type="mfa_factor",
            target_id=factor.id,
            details={"method": method, "purpose": "enroll"},
        )
        out.session = await sessions.start_session(
            state,
            session,
            user=user,
            tenant=actor.tenant,
            meta=meta,
            amr=policy.with_factor(actor.challenge.amr, method),
        )
    return out


async def abandon_setup(
    state: MfaState, session: AsyncSession, meta: RequestMeta, actor: Actor, factor_id: uuid.UUID
) -> MfaFactor | None:
    """Forget a set-up not yet confirmed, when its user cancels it or starts again: the factor
    (never usable before its confirmation) and its count of wrong codes. A confirmed factor, an
    unknown one or another user's is left as it is (removing a factor is `delete_factor`, with
    its own rules); the factor forgotten, else None."""
    user = actor.user
    factor = await repo.delete_pending_setup(session, user.tenant_id, user.id, factor_id)
    if factor is None:
        return None
    await state.cache.delete(_fails_key(factor.id))
    await AuditLog(session, meta, user.id).record(
        AuditAction.AUTH_MFA_FACTOR_DELETE,
        tenant_id=user.tenant_id,
        target_type="mfa_factor",
        target_id=factor.id,
        details={"type": factor.type, "name": factor.name, "pending": True},
    )
    return factor


async def pending_totp(
    state: MfaState, session: AsyncSession, actor: Actor, factor_id: uuid.UUID
) -> SetupOut | None:
    """The set-up of the actor's authenticator app not yet confirmed, to show its key again
    after a wrong code; None when there is none to finish (confirmed, gone, too late, locked)."""
    factor = await repo.get_factor(session, actor.user.tenant_id, actor.user.id, factor_id)
    kind = factor_of(factor.type) if factor is not None else None
    if factor is None or not isinstance(kind, TotpFactor):
        return None
    ttl = state.settings.mfa_challenge_ttl_seconds
    left = ttl - int((utcnow() - factor.created_at).total_seconds())
    seen = await state.cache.get(_fails_key(factor.id))
    if left <= 0 or (seen is not None and int(seen) >= state.settings.mfa_max_attempts):
        return None
    key = kind.pending_key(state, actor.user, factor)
    if key is None:
        return None
    return SetupOut(factor=factor_out(factor), totp=key, expires_in=left)


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
    state: MfaState,
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
    await AuditLog(session, meta, user.id).record(
        AuditAction.AUTH_MFA_FACTOR_DELETE,
        tenant_id=user.tenant_id,
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
            f"A second factor was removed from your BigfootLive account: {shown_name(factor)}. "
            "If this was not you, contact your administrator now.",
        )
