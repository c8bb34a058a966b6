"""Second factors: enrolment, sign-in and step-up verification, backup codes, recovery."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog, own_account
from bigfootlive.authz.roles import Role
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.db import after_commit, utcnow
from bigfootlive.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
)
from bigfootlive.identity import repository as identity_repo
from bigfootlive.identity import service as identity
from bigfootlive.identity.schemas import MfaChallenge, TokenPair
from bigfootlive.kit import jsonparse
from bigfootlive.kit.crypto import constant_time_equals
from bigfootlive.kit.request import RequestMeta
from bigfootlive.mfa import challenges, codes, passkeys, policy, totp
from bigfootlive.mfa import repository as repo
from bigfootlive.mfa.challenges import Challenge
from bigfootlive.mfa.ports import MfaState
from bigfootlive.mfa.schemas import (
    ChallengePrepareOut,
    ConfirmOut,
    FactorList,
    FactorOut,
    SetupOut,
    StepUpOut,
    TotpSetup,
)
from bigfootlive.mfa.sms.log import mask_phone
from bigfootlive.models import AuthSession, MfaBackupCode, MfaFactor, Tenant, User
from bigfootlive.tenants import service as tenants
from bigfootlive.tenants.schemas import MfaPolicy

log = structlog.get_logger(__name__)

MAX_FACTORS_PER_USER = 10


class InvalidChallenge(Unauthorized):
    code = "invalid_mfa_challenge"
    message = "The MFA challenge is invalid, used or expired; sign in again"


class InvalidCode(Unauthorized):
    code = "invalid_mfa_code"
    message = "The verification failed: wrong or expired code"


class ChallengeLocked(TooManyRequests):
    code = "mfa_challenge_locked"
    message = "Too many wrong attempts; this challenge is locked, sign in again"


class MfaLocked(TooManyRequests):
    code = "mfa_locked"
    message = "Too many wrong second-factor attempts; try again later"


class FactorNotFound(NotFound):
    code = "factor_not_found"
    message = "No such factor"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is managing factors: a signed-in subject, or a user in an enrolment challenge."""

    user: User
    tenant: Tenant
    subject: AuthSubject | None = None
    challenge: Challenge | None = None


def mask_email(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}{'*' * max(1, len(local) - 1)}@{domain}"


def factor_out(factor: MfaFactor) -> FactorOut:
    destination = None
    if factor.destination:
        masker = mask_phone if factor.type == "sms" else mask_email
        destination = masker(factor.destination)
    return FactorOut(
        id=factor.id,
        type=factor.type,
        name=factor.name,
        confirmed=factor.confirmed_at is not None,
        destination=destination,
        created_at=factor.created_at,
        last_used_at=factor.last_used_at,
    )


def _policy(tenant: Tenant) -> MfaPolicy:
    return tenants.settings_of(tenant).mfa


def _totp_context(factor_id: uuid.UUID) -> str:
    return f"mfa-totp:{factor_id}"


# ---------------------------------------------------------------- who is acting


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


# ---------------------------------------------------------------- codes by email / SMS


async def _send_code(state: MfaState, *, key: str, factor: MfaFactor, user: User, why: str) -> str:
    """Send a fresh 6-digit code to the factor's destination; returns the masked destination."""
    await state.limiter.check(state.settings.mfa_send_rate_limit, "mfa-send", str(user.id))
    code = codes.one_time_code()
    ttl = state.settings.mfa_code_ttl_seconds
    record = {"factor_id": str(factor.id), "digest": codes.code_digest(key, code)}
    await state.cache.set(key, json.dumps(record).encode(), ttl=ttl)
    minutes = max(1, ttl // 60)
    destination = factor.destination or ""
    try:
        if factor.type == "email":
            await state.mailer.send(
                destination,
                f"Your BigfootLive verification code: {code}",
                f"Your verification code to {why} is:\n\n    {code}\n\n"
                f"It expires in {minutes} minutes. If you did not ask for it, someone may know "
                "your password: change it now.",
            )
            return mask_email(destination)
        await state.sms.send(
            destination, f"BigfootLive code: {code} (expires in {minutes} min). Do not share it."
        )
        return mask_phone(destination)
    except Exception as exc:  # SMTP, SmsDeliveryError, network: all mean 'not delivered'
        await state.cache.delete(key)
        log.warning("mfa_code_delivery_failed", factor_type=factor.type, error=str(exc)[:200])
        raise ServiceUnavailable(
            "The code could not be delivered; try again or use another factor",
            code="code_delivery_failed",
        ) from exc


async def _check_sent_code(
    state: MfaState, key: str, code: str | None, factor_id: uuid.UUID | None
) -> uuid.UUID | None:
    """The factor the code was sent for when `code` matches (the code is then used up)."""
    raw = await state.cache.get(key)
    if raw is None or not code:
        return None
    record = jsonparse.loads(raw)
    if factor_id is not None and record["factor_id"] != str(factor_id):
        return None
    if not constant_time_equals(record["digest"], codes.code_digest(key, code)):
        return None
    await state.cache.delete(key)
    return uuid.UUID(record["factor_id"])


# ---------------------------------------------------------------- enrolment


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
    rules = _policy(actor.tenant)
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
    if factor_type == "sms" and not phone:
        raise BadRequest("A phone number (E.164) is needed for SMS", code="phone_required")
    factor = MfaFactor(
        id=uuid.uuid4(),
        tenant_id=user.tenant_id,
        user_id=user.id,
        type=factor_type,
        name=name or _default_name(factor_type),
        created_at=utcnow(),
    )
    out = SetupOut(factor=factor_out(factor), expires_in=ttl)
    if factor_type == "totp":
        secret = totp.new_secret()
        factor.secret_ciphertext = state.secrets.encrypt(secret, context=_totp_context(factor.id))
        uri = totp.provisioning_uri(secret, account=user.email, issuer=state.settings.mfa_issuer)
        out.totp = TotpSetup(secret=secret, otpauth_uri=uri, qr_svg=totp.qr_svg(uri))
    elif factor_type == "webauthn":
        existing = [
            f.credential_id
            for f in await repo.user_factors(session, user.tenant_id, user.id, types=["webauthn"])
            if f.credential_id
        ]
        options, challenge = passkeys.registration_options(
            state.settings,
            user_handle=user.id.bytes,
            user_name=user.email,
            display_name=user.display_name,
            exclude=existing,
        )
        await state.cache.set(f"mfa:enrol:{factor.id}:webauthn", challenge, ttl=ttl)
        out.webauthn_options = options
    else:
        factor.destination = user.email if factor_type == "email" else phone
    session.add(factor)
    await session.flush()
    if factor_type in ("email", "sms"):
        out.code_sent_to = await _send_code(
            state,
            key=f"mfa:enrol:{factor.id}:code",
            factor=factor,
            user=user,
            why="confirm this sign-in method",
        )
        out.expires_in = state.settings.mfa_code_ttl_seconds
    out.factor = factor_out(factor)
    await AuditLog(session, meta, user.id).record(
        AuditAction.AUTH_MFA_SETUP,
        tenant_id=user.tenant_id,
        target_type="mfa_factor",
        target_id=factor.id,
        details={"type": factor_type, "via": "challenge" if actor.challenge else "session"},
    )
    return out


def _default_name(factor_type: str) -> str:
    return {
        "totp": "Authenticator app",
        "webauthn": "Passkey",
        "email": "Email codes",
        "sms": "Text messages",
    }[factor_type]


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
    fails_key = f"mfa:enrol:{factor.id}:fails"
    seen = await state.cache.get(fails_key)
    if seen is not None and int(seen) >= state.settings.mfa_max_attempts:
        raise ChallengeLocked("Too many wrong codes; start the setup again")
    ok = await _prove_new_factor(state, factor, code=code, credential=credential)
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
    _notify(
        state,
        session,
        user,
        "A sign-in method was added to your account",
        f"A new second factor ({factor.name}, {factor.type}) was added to your BigfootLive "
        "account. If this was not you, contact your administrator now.",
    )
    out = ConfirmOut(factor=factor_out(factor))
    rules = _policy(actor.tenant)
    if not had_factor and rules.allow_backup_codes:
        out.backup_codes = await _replace_backup_codes(state, session, user)
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
        out.session = await identity.start_session(
            state,
            session,
            user=user,
            tenant=actor.tenant,
            meta=meta,
            amr=policy.with_factor(actor.challenge.amr, method),
        )
    return out


async def _prove_new_factor(
    state: MfaState, factor: MfaFactor, *, code: str | None, credential: dict[str, Any] | None
) -> bool:
    if factor.type == "totp":
        if not code or factor.secret_ciphertext is None:
            return False
        secret = state.secrets.decrypt(factor.secret_ciphertext, context=_totp_context(factor.id))
        step = totp.matching_step(secret, code)
        if step is None:
            return False
        factor.totp_last_step = step
        return True
    if factor.type == "webauthn":
        key = f"mfa:enrol:{factor.id}:webauthn"
        challenge = await state.cache.get(key)
        if challenge is None or credential is None:
            return False
        try:
            verified = passkeys.verify_attestation(
                state.settings, credential=credential, challenge=challenge
            )
        except passkeys.PasskeyError as exc:
            log.info("webauthn_registration_refused", reason=str(exc)[:200])
            return False
        await state.cache.delete(key)
        factor.credential_id = verified.credential_id
        factor.public_key = verified.public_key
        factor.sign_count = verified.sign_count
        return True
    key = f"mfa:enrol:{factor.id}:code"
    return await _check_sent_code(state, key, code, factor.id) is not None


# ---------------------------------------------------------------- listing and removal


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
    rules = _policy(tenant)
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
        _notify(
            state,
            session,
            user,
            "A sign-in method was removed from your account",
            f"The second factor {factor.name} ({factor.type}) was removed from your BigfootLive "
            "account. If this was not you, contact your administrator now.",
        )


# ---------------------------------------------------------------- backup codes


async def _replace_backup_codes(state: MfaState, session: AsyncSession, user: User) -> list[str]:
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
    rules = _policy(tenant)
    if not rules.allow_backup_codes or rules.mode == "off":
        raise Forbidden("Backup codes are turned off", code="backup_codes_disabled")
    if not await repo.user_factors(session, user.tenant_id, user.id):
        raise Conflict("Set up a second factor first", code="no_factor")
    fresh = await _replace_backup_codes(state, session, user)
    await AuditLog(session, meta, user.id).record(
        AuditAction.AUTH_MFA_BACKUP_CODES, details={"count": len(fresh)}, **own_account(user)
    )
    return fresh


# ---------------------------------------------------------------- challenges


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
    return user, tenant, _policy(tenant)


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
    if factor.type in ("email", "sms"):
        out.code_sent_to = await _send_code(
            state, key=challenge.key("code"), factor=factor, user=user, why="sign in"
        )
        out.expires_in = min(int(challenge.ttl), state.settings.mfa_code_ttl_seconds)
        await AuditLog(session, meta, user.id).record(
            AuditAction.AUTH_MFA_CODE_SENT,
            tenant_id=user.tenant_id,
            target_type="mfa_factor",
            target_id=factor.id,
            details={"type": factor.type, "purpose": challenge.purpose},
        )
    elif factor.type == "webauthn":
        allow = [f.credential_id for f in factors if f.type == "webauthn" and f.credential_id]
        options, raw = passkeys.authentication_options(state.settings, allow=allow)
        await state.cache.set(challenge.key("webauthn"), raw, ttl=challenge.ttl)
        out.webauthn_options = options
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
    factor = await _prove(
        state,
        session,
        challenge,
        user,
        rules,
        factors,
        method=method,
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
    await AuditLog(session, meta, user.id).record(
        AuditAction.AUTH_MFA_VERIFY,
        tenant_id=user.tenant_id,
        target_type="mfa_factor" if isinstance(factor, MfaFactor) else "user",
        target_id=target_id,
        details={"method": method, "purpose": challenge.purpose},
    )
    if method == "backup_code":
        remaining = await repo.unused_backup_codes(session, user.tenant_id, user.id)
        await AuditLog(session, meta, user.id).record(
            AuditAction.AUTH_MFA_BACKUP_CODE_USED,
            details={"remaining": remaining},
            **own_account(user),
        )
        _notify(
            state,
            session,
            user,
            "A backup code was used",
            f"A backup code was used to verify your BigfootLive account; {remaining} remain. "
            "If this was not you, contact your administrator now.",
        )
    amr = policy.with_factor(challenge.amr, method)
    if challenge.purpose == "login":
        return await identity.start_session(
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


async def _prove(
    state: MfaState,
    session: AsyncSession,
    challenge: Challenge,
    user: User,
    rules: MfaPolicy,
    factors: Sequence[MfaFactor],
    *,
    method: str,
    factor_id: uuid.UUID | None,
    code: str | None,
    credential: dict[str, Any] | None,
    password: str | None,
) -> MfaFactor | bool:
    """The factor proved (True for a backup code or password), False for a wrong answer."""
    if method == "password":
        if challenge.purpose != "step_up" or factors:
            raise BadRequest(
                "A password cannot stand in for your second factor", code="method_not_allowed"
            )
        ok, _ = await state.passwords.verify(user.password_hash, password or "")
        return ok
    if method == "backup_code":
        if not factors or not rules.allow_backup_codes or not code:
            return False
        candidates = codes.backup_code_candidates(state.settings.data_keys, user.id, code)
        return await repo.claim_backup_code(session, user.tenant_id, user.id, candidates, utcnow())
    chosen = [f for f in factors if f.type == method and (factor_id is None or f.id == factor_id)]
    if not chosen:
        raise BadRequest("No such factor for this account", code="factor_not_available")
    if method == "totp":
        for factor in chosen:
            if code and factor.secret_ciphertext:
                secret = state.secrets.decrypt(
                    factor.secret_ciphertext, context=_totp_context(factor.id)
                )
                step = totp.matching_step(secret, code)
                # A step at or before the last accepted one is a replay: refused like a wrong code.
                # (Checked here, then again atomically by the update, for concurrent requests.)
                if step is None or (
                    factor.totp_last_step is not None and step <= factor.totp_last_step
                ):
                    continue
                if await repo.advance_totp_step(session, factor.id, step):
                    return factor
        return False
    if method in ("email", "sms"):
        proved = await _check_sent_code(state, challenge.key("code"), code, factor_id)
        return next((f for f in chosen if f.id == proved), False)
    # webauthn
    raw_challenge = await state.cache.get(challenge.key("webauthn"))
    credential_id = passkeys.credential_id_of(credential or {})
    if raw_challenge is None or credential_id is None:
        return False
    passkey = next((f for f in chosen if f.credential_id == credential_id), None)
    if passkey is None or passkey.public_key is None:
        return False
    try:
        new_count = passkeys.verify_assertion(
            state.settings,
            credential=credential or {},
            challenge=raw_challenge,
            public_key=passkey.public_key,
            sign_count=passkey.sign_count,
        )
    except passkeys.PasskeyError as exc:
        log.info("webauthn_assertion_refused", reason=str(exc)[:200])
        return False
    await state.cache.delete(challenge.key("webauthn"))
    moved = await repo.advance_sign_count(
        session, passkey.id, passkey.sign_count, new_count, utcnow()
    )
    if not moved:
        return False
    return passkey


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
    rules = _policy(tenant)
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


# ---------------------------------------------------------------- recovery


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
    _notify(
        state,
        session,
        user,
        "Your two-step verification was reset",
        "An administrator of your organisation removed all second factors from your "
        "BigfootLive account. You may be asked to set one up at your next sign-in. "
        "If you did not ask for this, contact your administrator now.",
    )
    return removed


def _notify(state: MfaState, session: AsyncSession, user: User, subject: str, body: str) -> None:
    async def send() -> None:
        await state.mailer.send(user.email, subject, body)

    after_commit(session, send)
