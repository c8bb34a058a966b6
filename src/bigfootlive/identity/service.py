"""Accounts, sign-in, sessions and tokens: the rules. Knows nothing of HTTP."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog, own_account
from bigfootlive.authz.roles import Permission, Role
from bigfootlive.authz.subject import AuthSubject, TenantInactive
from bigfootlive.db import after_commit, utcnow
from bigfootlive.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
)
from bigfootlive.identity import lockout
from bigfootlive.identity import repository as repo
from bigfootlive.identity.hooks import (
    PASSWORD_SIGN_IN,
    SIGN_IN_CHALLENGE,
    PasswordSignIn,
    PasswordSignInRefused,
    SignIn,
)
from bigfootlive.identity.passwords import check_password_policy
from bigfootlive.identity.ports import IdentityState
from bigfootlive.identity.schemas import MfaChallenge, TokenPair, UserOut
from bigfootlive.kit.crypto import hash_token, random_token
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import (
    AuditRecord,
    AuthSession,
    PasswordHistory,
    RefreshToken,
    Tenant,
    User,
    UserToken,
)
from bigfootlive.tenants import service as tenants
from bigfootlive.tenants.schemas import TenantSettings
from bigfootlive.webhooks import service as webhooks

PURPOSE_RESET = "password_reset"
PURPOSE_VERIFY = "email_verify"


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    message = "The email or password is incorrect"


class InvalidRefreshToken(Unauthorized):
    code = "invalid_refresh_token"
    message = "The refresh token is not valid"


class InvalidOneTimeToken(BadRequest):
    code = "invalid_token"
    message = "The link is invalid or has expired"


def user_out(user: User, tenant_slug: str) -> UserOut:
    return UserOut(
        id=user.id,
        tenant_id=user.tenant_id,
        tenant_slug=tenant_slug,
        email=user.email,
        display_name=user.display_name,
        role=Role(user.role),
        is_platform_admin=user.is_platform_admin,
        email_verified=user.email_verified_at is not None,
        created_at=user.created_at,
    )


# ---------------------------------------------------------------- passwords


def check_password_rules(password: str, email: str, policy: TenantSettings) -> None:
    """The tenant's password policy (length, character rules, common passwords); 422 if not."""
    rules = policy.password_policy
    check_password_policy(
        password,
        min_length=rules.min_length,
        require_upper=rules.require_upper,
        require_lower=rules.require_lower,
        require_digit=rules.require_digit,
        require_symbol=rules.require_symbol,
        email=email,
    )


def store_password_hash(session: AsyncSession, user: User, password_hash: str) -> None:
    user.password_hash = password_hash
    user.password_changed_at = utcnow()
    session.add(PasswordHistory(user_id=user.id, password_hash=password_hash))


async def set_password(
    state: IdentityState, session: AsyncSession, user: User, password: str, policy: TenantSettings
) -> None:
    """Apply the tenant's password policy and history, then store the new argon2id hash."""
    rules = policy.password_policy
    check_password_rules(password, user.email, policy)
    if rules.history and user.password_hash is not None:
        previous = [
            user.password_hash,
            *await repo.recent_password_hashes(session, user.id, rules.history),
        ]
        if await state.passwords.matches_any(previous[: rules.history], password):
            raise BadRequest(
                f"The password must differ from your last {rules.history} passwords",
                code="password_reused",
            )
    store_password_hash(session, user, await state.passwords.hash(password))


# ---------------------------------------------------------------- accounts


async def create_account(
    state: IdentityState,
    session: AsyncSession,
    *,
    tenant: Tenant,
    email: str,
    display_name: str,
    role: Role,
    password: str | None,
    password_hash: str | None = None,
    is_platform_admin: bool = False,
    email_verified: bool = False,
) -> User:
    """A new account; `password` is checked against the policy and hashed, while
    `password_hash` was (a confirmed self-registration)."""
    email = email.lower()
    if await repo.get_user_by_email(session, tenant.id, email) is not None:
        raise Conflict("An account with this email already exists", code="email_taken")
    user = User(
        id=uuid.uuid4(),
        tenant_id=tenant.id,
        email=email,
        display_name=display_name,
        role=role.value,
        is_platform_admin=is_platform_admin,
        email_verified_at=utcnow() if email_verified else None,
    )
    session.add(user)
    try:
        # Flushed alone first: rows that reference it (history, sessions) follow.
        await session.flush()
    except IntegrityError as exc:  # a concurrent registration won the race
        raise Conflict("An account with this email already exists", code="email_taken") from exc
    if password is not None:
        await set_password(state, session, user, password, tenants.settings_of(tenant))
    elif password_hash is not None:
        store_password_hash(session, user, password_hash)
    await webhooks.emit(
        session,
        tenant.id,
        "user.created",
        {
            "user_id": str(user.id),
            "email": user.email,
            "display_name": user.display_name,
            "role": user.role,
        },
    )
    return user


# ---------------------------------------------------------------- sign-in


async def login(
    state: IdentityState,
    session: AsyncSession,
    meta: RequestMeta,
    *,
    tenant_slug: str | None,
    email: str,
    password: str,
) -> TokenPair | MfaChallenge:
    settings = state.settings
    email = email.lower()
    await state.limiter.check(settings.login_rate_limit, "login-ip", meta.ip)
    tenant = await tenants.resolve_tenant(session, tenant_slug, email)
    if tenant is None:
        await state.passwords.verify(None, password)
        await AuditLog.detached(state.db, meta, None).record(
            AuditAction.AUTH_LOGIN, tenant_id=None, details={"reason": "unknown_tenant"}
        )
        raise InvalidCredentials()
    await state.limiter.check(settings.login_rate_limit, "login-account", str(tenant.id), email)
    policy = tenants.settings_of(tenant).lockout
    user = await repo.get_user_by_email(session, tenant.id, email)
    now = state.clock()
    await lockout.check(state, session, meta, tenant_id=tenant.id, email=email, user=user, now=now)
    if user is None:
        await state.passwords.verify(None, password)  # the same cost as a real account's
        await lockout.record_failure(
            state, meta, tenant_id=tenant.id, email=email, user=None, policy=policy, now=now
        )
        raise InvalidCredentials()

    ok, needs_rehash = await state.passwords.verify(user.password_hash, password)
    if not ok:
        await lockout.record_failure(
            state, meta, tenant_id=tenant.id, email=email, user=user, policy=policy, now=now
        )
        raise InvalidCredentials()
    if not user.is_active:
        await AuditLog.detached(state.db, meta, user.id).record(
            AuditAction.AUTH_LOGIN,
            tenant_id=tenant.id,
            target_type="user",
            target_id=user.id,
            details={"reason": "disabled"},
        )
        raise Forbidden("The account is disabled", code="account_disabled")
    try:
        # "SSO required": break-glass admins only (the SSO domain's hook)
        await state.hooks.emit(PASSWORD_SIGN_IN, PasswordSignIn(session, user))
    except PasswordSignInRefused as refused:
        await AuditLog.detached(state.db, meta, user.id).record(
            AuditAction.AUTH_LOGIN,
            tenant_id=tenant.id,
            target_type="user",
            target_id=user.id,
            details={"reason": refused.code},
        )
        raise

    if needs_rehash:
        user.password_hash = await state.passwords.hash(password)
    await lockout.clear(session, tenant.id, email)
    user.last_login_at = now
    await AuditLog(session, meta, user.id).record(
        AuditAction.AUTH_LOGIN,
        tenant_id=tenant.id,
        target_type="user",
        target_id=user.id,
        details={"method": "pwd", "rehashed": needs_rehash},
    )
    return await finish_sign_in(state, session, user=user, tenant=tenant, meta=meta, amr=["pwd"])


async def finish_sign_in(
    state: IdentityState,
    session: AsyncSession,
    *,
    user: User,
    tenant: Tenant,
    meta: RequestMeta,
    amr: list[str],
) -> TokenPair | MfaChallenge:
    """The last step of every sign-in method (password, SSO, ...) once the first factor passed.

    This is where the tenant's MFA policy is applied before a session is created: a user with
    a second factor (or who must have one) gets an MFA challenge instead of tokens, unless
    `amr` already shows a second factor (an IdP that did MFA, e.g. ["pwd", "mfa"]).
    """
    challenge = await state.hooks.ask(
        SIGN_IN_CHALLENGE,
        SignIn(state=state, session=session, user=user, tenant=tenant, meta=meta, amr=amr),
    )
    if challenge is not None:
        return challenge
    return await start_session(state, session, user=user, tenant=tenant, meta=meta, amr=amr)


async def start_session(
    state: IdentityState,
    session: AsyncSession,
    *,
    user: User,
    tenant: Tenant,
    meta: RequestMeta,
    amr: list[str],
) -> TokenPair:
    """Create a session row and its first token pair. Every sign-in method ends here."""
    now = utcnow()
    auth_session = AuthSession(
        id=uuid.uuid4(),
        tenant_id=user.tenant_id,
        user_id=user.id,
        user_agent=meta.user_agent,
        ip=meta.ip,
        amr=" ".join(amr),
        auth_time=now,
        created_at=now,
        last_seen_at=now,
        expires_at=now + dt.timedelta(seconds=state.settings.refresh_token_ttl_seconds),
    )
    session.add(auth_session)
    await session.flush()  # the refresh token row references it
    return await _issue_pair(
        state, session, user=user, tenant_slug=tenant.slug, auth_session=auth_session
    )


async def _issue_pair(
    state: IdentityState,
    session: AsyncSession,
    *,
    user: User,
    tenant_slug: str,
    auth_session: AuthSession,
) -> TokenPair:
    refresh = random_token()
    session.add(RefreshToken(session_id=auth_session.id, token_hash=hash_token(refresh)))
    roles = [user.role, *(["platform_admin"] if user.is_platform_admin else [])]
    access, _ = state.tokens.issue(
        user_id=user.id,
        tenant_id=user.tenant_id,
        session_id=auth_session.id,
        roles=roles,
        amr=auth_session.amr.split(),
        auth_time=auth_session.auth_time,
    )
    return TokenPair(
        access_token=access,
        expires_in=state.tokens.ttl,
        refresh_token=refresh,
        session_id=auth_session.id,
        user=user_out(user, tenant_slug),
    )


async def refresh(
    state: IdentityState, session: AsyncSession, meta: RequestMeta, *, refresh_token: str
) -> TokenPair:
    found = await repo.find_refresh_token(session, hash_token(refresh_token))
    if found is None:
        raise InvalidRefreshToken()
    token, auth_session = found
    now = utcnow()
    if auth_session.revoked_at is not None or auth_session.expires_at <= now:
        raise InvalidRefreshToken("The session has ended", code="session_revoked")
    idle = dt.timedelta(seconds=state.settings.session_idle_timeout_seconds)
    if auth_session.last_seen_at + idle <= now:
        await _end_sessions_detached(
            state, meta, auth_session, reason="idle_timeout", result="success"
        )
        raise InvalidRefreshToken("The session has ended", code="session_revoked")
    claimed = token.used_at is None and await repo.claim_refresh_token(session, token.id, now)
    if not claimed:
        # A claim that lost the race still opened a write transaction: on SQLite that holds the
        # database's one write lock, and the revocation below (another connection) would wait
        # for it until the busy timeout. Nothing of this request is kept, so let go of it first
        # (expunged, the session row keeps its loaded fields through the rollback).
        session.expunge(auth_session)
        await session.rollback()
        await _end_sessions_detached(state, meta, auth_session, reason="refresh_token_reuse")
        raise InvalidRefreshToken(
            "The refresh token was already used; the session has been ended",
            code="refresh_token_reused",
        )
    user = await repo.get_user(session, auth_session.tenant_id, auth_session.user_id)
    tenant = await tenants.get_tenant(session, auth_session.tenant_id)
    if user is None or tenant is None or not user.is_active:
        raise InvalidRefreshToken()
    if not tenant.is_active and not user.is_platform_admin:
        raise TenantInactive()
    auth_session.last_seen_at = now
    auth_session.ip = meta.ip
    return await _issue_pair(
        state, session, user=user, tenant_slug=tenant.slug, auth_session=auth_session
    )


async def _end_sessions_detached(
    state: IdentityState,
    meta: RequestMeta,
    auth_session: AuthSession,
    *,
    reason: str,
    result: str = "failure",
) -> None:
    async with state.db.transaction() as tx:
        await repo.revoke_sessions(tx, [auth_session.id], utcnow(), reason)
        await AuditLog(tx, meta, auth_session.user_id).record(
            AuditAction.AUTH_REFRESH_REUSE
            if reason == "refresh_token_reuse"
            else AuditAction.AUTH_SESSION_END,
            tenant_id=auth_session.tenant_id,
            result=result,
            target_type="session",
            target_id=auth_session.id,
            details={"reason": reason},
        )
    await state.revoked.revoke(auth_session.id, user_id=auth_session.user_id)


# ---------------------------------------------------------------- sessions


async def end_sessions(
    state: IdentityState,
    session: AsyncSession,
    meta: RequestMeta,
    *,
    actor: AuthSubject | None,
    user: User,
    session_ids: list[uuid.UUID],
    reason: str,
) -> None:
    if not session_ids:
        return
    await repo.revoke_sessions(session, session_ids, utcnow(), reason)
    for sid in session_ids:
        await state.revoked.revoke(sid, user_id=user.id)
    await AuditLog(session, meta, actor.user_id if actor else user.id).record(
        AuditAction.AUTH_SESSION_END,
        tenant_id=user.tenant_id,
        target_type="user",
        target_id=user.id,
        details={"sessions": [str(s) for s in session_ids], "reason": reason},
    )


async def logout(
    state: IdentityState, session: AsyncSession, meta: RequestMeta, subject: AuthSubject
) -> None:
    await end_sessions(
        state,
        session,
        meta,
        actor=subject,
        user=subject.user,
        session_ids=[subject.session_id],
        reason="logout",
    )


async def list_sessions(session: AsyncSession, subject: AuthSubject) -> Sequence[AuthSession]:
    return await repo.user_sessions(session, subject.user_id, utcnow())


async def terminate_session(
    state: IdentityState,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    session_id: uuid.UUID,
) -> None:
    target = await session.get(AuthSession, session_id)
    if target is None or target.user_id != subject.user_id or target.revoked_at is not None:
        raise NotFound("No such session", code="session_not_found")
    await end_sessions(
        state,
        session,
        meta,
        actor=subject,
        user=subject.user,
        session_ids=[session_id],
        reason="terminated",
    )


# ---------------------------------------------------------------- password change / reset


async def change_password(
    state: IdentityState,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    *,
    current_password: str,
    new_password: str,
) -> None:
    # Loaded in this (write) session: the subject's copy belongs to the read session.
    user = await repo.get_user(session, subject.tenant_id, subject.user_id)
    if user is None:
        raise NotFound("No such user", code="user_not_found")
    tenant = await tenants.require_tenant(session, subject.tenant_id)
    ok, _ = await state.passwords.verify(user.password_hash, current_password)
    if not ok:
        await AuditLog.detached(state.db, meta, user.id).record(
            AuditAction.AUTH_PASSWORD_CHANGE,
            details={"reason": "bad_current_password"},
            **own_account(user),
        )
        raise Forbidden("The current password is incorrect", code="invalid_current_password")
    await set_password(state, session, user, new_password, tenants.settings_of(tenant))
    others = [
        sid for sid in await repo.active_session_ids(session, user.id) if sid != subject.session_id
    ]
    await end_sessions(
        state,
        session,
        meta,
        actor=subject,
        user=user,
        session_ids=others,
        reason="password_changed",
    )
    await AuditLog(session, meta, user.id).record(
        AuditAction.AUTH_PASSWORD_CHANGE, **own_account(user)
    )
    mail_after_commit(
        state,
        session,
        user.email,
        "Your BigfootLive password was changed",
        "Your password was just changed. If this was not you, reset your password now "
        "and contact your administrator.",
    )


async def request_password_reset(
    state: IdentityState,
    session: AsyncSession,
    meta: RequestMeta,
    *,
    tenant_slug: str | None,
    email: str,
) -> None:
    """Always succeeds from the caller's view, so it cannot be used to discover accounts."""
    email = email.lower()
    await state.limiter.check(state.settings.reset_rate_limit, "reset-ip", meta.ip)
    await state.limiter.check(state.settings.reset_rate_limit, "reset-email", hash_token(email))
    tenant = await tenants.resolve_tenant(session, tenant_slug, email)
    user = await repo.get_user_by_email(session, tenant.id, email) if tenant else None
    if user is None or not user.is_active:
        return
    token = new_user_token(session, user, PURPOSE_RESET, state.settings.password_reset_ttl_seconds)
    await AuditLog(session, meta, None).record(
        AuditAction.AUTH_PASSWORD_RESET_REQUEST,
        tenant_id=user.tenant_id,
        target_type="user",
        target_id=user.id,
    )
    link = f"{state.settings.public_base_url}/reset-password?token={token}"
    mail_after_commit(
        state,
        session,
        user.email,
        "Reset your BigfootLive password",
        f"Someone asked to reset the password of this account.\n\nTo choose a new password, open:\n"
        f"{link}\n\nThe link works once and expires in "
        f"{state.settings.password_reset_ttl_seconds // 60} minutes. "
        "If it was not you, ignore this email.",
    )


async def reset_password(
    state: IdentityState, session: AsyncSession, meta: RequestMeta, *, token: str, new_password: str
) -> None:
    record = await _consume_user_token(session, token, PURPOSE_RESET)
    user = await repo.get_user(session, record.tenant_id, record.user_id)
    tenant = await tenants.get_tenant(session, record.tenant_id)
    if user is None or tenant is None:
        raise InvalidOneTimeToken()
    await set_password(state, session, user, new_password, tenants.settings_of(tenant))
    await lockout.clear(session, user.tenant_id, user.email)
    await end_sessions(
        state,
        session,
        meta,
        actor=None,
        user=user,
        session_ids=await repo.active_session_ids(session, user.id),
        reason="password_reset",
    )
    await AuditLog(session, meta, user.id).record(
        AuditAction.AUTH_PASSWORD_RESET, **own_account(user)
    )


# ---------------------------------------------------------------- email verification


async def send_email_verification(state: IdentityState, session: AsyncSession, user: User) -> None:
    token = new_user_token(
        session, user, PURPOSE_VERIFY, state.settings.email_verification_ttl_seconds
    )
    link = f"{state.settings.public_base_url}/verify-email?token={token}"
    mail_after_commit(
        state,
        session,
        user.email,
        "Confirm your email address",
        f"Welcome to BigfootLive, {user.display_name}.\n\n"
        f"Confirm your email address by opening:\n{link}\n",
    )


async def resend_verification(
    state: IdentityState, session: AsyncSession, meta: RequestMeta, subject: AuthSubject
) -> None:
    await state.limiter.check(state.settings.reset_rate_limit, "verify-user", str(subject.user_id))
    if subject.user.email_verified_at is not None:
        raise Conflict("The email address is already verified", code="already_verified")
    await send_email_verification(state, session, subject.user)


async def verify_email(
    state: IdentityState, session: AsyncSession, meta: RequestMeta, *, token: str
) -> None:
    record = await _consume_user_token(session, token, PURPOSE_VERIFY)
    user = await repo.get_user(session, record.tenant_id, record.user_id)
    if user is None:
        raise InvalidOneTimeToken()
    user.email_verified_at = utcnow()
    await AuditLog(session, meta, user.id).record(
        AuditAction.AUTH_EMAIL_VERIFIED, **own_account(user)
    )


def new_user_token(session: AsyncSession, user: User, purpose: str, ttl_seconds: int) -> str:
    token = random_token()
    session.add(
        UserToken(
            tenant_id=user.tenant_id,
            user_id=user.id,
            purpose=purpose,
            token_hash=hash_token(token),
            expires_at=utcnow() + dt.timedelta(seconds=ttl_seconds),
        )
    )
    return token


async def _consume_user_token(session: AsyncSession, token: str, purpose: str) -> UserToken:
    record = await repo.find_user_token(session, hash_token(token), purpose)
    now = utcnow()
    if record is None or record.used_at is not None or record.expires_at <= now:
        raise InvalidOneTimeToken()
    claimed = await session.execute(
        update(UserToken)
        .where(UserToken.id == record.id, UserToken.used_at.is_(None))
        .values(used_at=now)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise InvalidOneTimeToken()
    return record


def mail_after_commit(
    state: IdentityState, session: AsyncSession, to: str, subject: str, body: str
) -> None:
    async def send() -> None:
        await state.mailer.send(to, subject, body)

    after_commit(session, send)


# ---------------------------------------------------------------- audit


async def list_audit(
    session: AsyncSession,
    subject: AuthSubject,
    *,
    scope: str,
    action: str | None,
    cursor: str | None,
    limit: int,
) -> Sequence[AuditRecord]:
    if scope == "tenant":
        if not subject.can(Permission.AUDIT_READ_TENANT):
            raise Forbidden(code="insufficient_role", required=str(Permission.AUDIT_READ_TENANT))
        return await repo.audit_for_user(
            session, subject.tenant_id, None, action=action, cursor=cursor, limit=limit
        )
    return await repo.audit_for_user(
        session, subject.tenant_id, subject.user_id, action=action, cursor=cursor, limit=limit
    )
