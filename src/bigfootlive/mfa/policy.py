"""The tenant's MFA policy applied at sign-in, and the step-up check for sensitive actions.

Imported by `identity.sign_in.finish_sign_in`; so it must not import `identity.sign_in`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.roles import Role
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.errors import Forbidden, Unauthorized
from bigfootlive.identity.schemas import MfaChallenge, MfaFactorBrief
from bigfootlive.kit.request import RequestMeta
from bigfootlive.mfa import challenges
from bigfootlive.mfa import repository as repo
from bigfootlive.models import MfaFactor, Tenant, User
from bigfootlive.state import Infrastructure
from bigfootlive.tenants import service as tenants
from bigfootlive.tenants.schemas import MfaPolicy

# RFC 8176 methods that prove a second factor, ours ("otp", "sms", "hwk") or an IdP's.
MFA_METHODS = frozenset({"mfa", "otp", "sms", "hwk", "swk", "fpt", "face", "iris", "retina"})
AMR_OF_METHOD = {
    "totp": "otp",
    "email": "otp",
    "sms": "sms",
    "webauthn": "hwk",
    "backup_code": "otp",
    "password": "pwd",
}


class StepUpRequired(Unauthorized):
    code = "step_up_required"
    message = "This action needs a recent second-factor verification"


def has_mfa(amr: Sequence[str]) -> bool:
    return bool(MFA_METHODS.intersection(amr))


def with_factor(amr: Sequence[str], method: str) -> list[str]:
    """The session's amr after `method` was proved: first factor(s), the factor, then "mfa"."""
    out = list(dict.fromkeys([*amr, AMR_OF_METHOD[method]]))
    if method != "password" and "mfa" not in out:
        out.append("mfa")
    return out


async def usable_factors(
    session: AsyncSession, user: User, policy: MfaPolicy
) -> Sequence[MfaFactor]:
    if policy.mode == "off":
        return []
    return await repo.user_factors(session, user.tenant_id, user.id, types=policy.allowed_factors)


async def challenge_out(
    state: Infrastructure,
    session: AsyncSession,
    *,
    status: str,
    token: str,
    user: User,
    policy: MfaPolicy,
    factors: Sequence[MfaFactor],
    allow_password: bool = False,
) -> MfaChallenge:
    methods = list(dict.fromkeys(f.type for f in factors))
    if (
        factors
        and policy.allow_backup_codes
        and await repo.unused_backup_codes(session, user.tenant_id, user.id)
    ):
        methods.append("backup_code")
    if allow_password:
        methods.append("password")
    return MfaChallenge.model_validate(
        {
            "status": status,
            "challenge_token": token,
            "expires_in": state.settings.mfa_challenge_ttl_seconds,
            "factors": [MfaFactorBrief(id=f.id, type=f.type, name=f.name) for f in factors],
            "methods": methods,
            "allowed_factor_types": list(policy.allowed_factors) if policy.mode != "off" else [],
        }
    )


async def sign_in_challenge(
    state: Infrastructure,
    session: AsyncSession,
    *,
    user: User,
    tenant: Tenant,
    meta: RequestMeta,
    amr: list[str],
    known_usable_factors: int | None = None,
) -> MfaChallenge | None:
    """None when the sign-in may go straight to a session; else the challenge to answer.
    `known_usable_factors`: the user's usable factor count when the sign-in read it (0: no
    query for them)."""
    policy = tenants.settings_of(tenant).mfa
    if policy.mode == "off" or has_mfa(amr):
        return None
    if known_usable_factors == 0:
        factors: Sequence[MfaFactor] = []
    else:
        factors = await usable_factors(session, user, policy)
    if factors:
        purpose: challenges.Purpose = "login"
        status = "mfa_required"
    elif policy.required_for(Role(user.role)):
        purpose, status = "enroll", "mfa_enrollment_required"
    else:
        return None
    token, _ = await challenges.issue(
        state, purpose=purpose, tenant_id=tenant.id, user_id=user.id, amr=amr
    )
    await AuditLog(session, meta, user.id).record(
        AuditAction.AUTH_MFA_CHALLENGE,
        tenant_id=tenant.id,
        target_type="user",
        target_id=user.id,
        details={"purpose": purpose, "factors": [f.type for f in factors]},
    )
    return await challenge_out(
        state, session, status=status, token=token, user=user, policy=policy, factors=factors
    )


async def ensure_recent_mfa(
    state: Infrastructure,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    *,
    max_age: int | None = None,
) -> None:
    """Pass when the caller's token shows a recent enough verification, else 401 + challenge.

    A user with a usable factor needs a second factor in `amr` no older than `max_age`
    (`auth_time`). A user without one (MFA optional for them, or off) needs a recent
    sign-in, renewable by re-entering the password. A user who must use MFA but has no
    factor is told to enrol (403).
    """
    max_age = state.settings.mfa_step_up_max_age_seconds if max_age is None else max_age
    tenant = await tenants.require_tenant(session, subject.tenant_id)
    policy = tenants.settings_of(tenant).mfa
    user = subject.user
    fresh = dt.datetime.now(dt.UTC) - subject.auth_time <= dt.timedelta(seconds=max_age)
    amr = subject.claims.amr
    if fresh and has_mfa(amr):
        return
    factors = await usable_factors(session, user, policy)
    if not factors:
        if policy.mode != "off" and policy.required_for(subject.role):
            raise Forbidden(
                "Your organisation requires MFA: set up a factor first",
                code="mfa_enrollment_required",
            )
        if fresh:
            return
    challenge = await step_up_challenge(state, session, subject, policy, factors)
    await AuditLog.detached(state.db, meta, user.id).record(
        AuditAction.AUTH_MFA_STEP_UP_REQUIRED,
        tenant_id=user.tenant_id,
        result="failure",
        target_type="session",
        target_id=subject.session_id,
        details={"max_age": max_age, "amr": list(amr)},
    )
    raise StepUpRequired(challenge=challenge.model_dump(mode="json"))


async def step_up_challenge(
    state: Infrastructure,
    session: AsyncSession,
    subject: AuthSubject,
    policy: MfaPolicy,
    factors: Sequence[MfaFactor],
) -> MfaChallenge:
    """A challenge bound to the caller's session; answering it refreshes amr and auth_time.

    Users with a factor must use it; users without one re-enter their password.
    """
    user = subject.user
    token, _ = await challenges.issue(
        state,
        purpose="step_up",
        tenant_id=user.tenant_id,
        user_id=user.id,
        amr=list(subject.claims.amr),
        session_id=subject.session_id,
    )
    return await challenge_out(
        state,
        session,
        status="step_up_required",
        token=token,
        user=user,
        policy=policy,
        factors=factors,
        allow_password=not factors and user.password_hash is not None,
    )
