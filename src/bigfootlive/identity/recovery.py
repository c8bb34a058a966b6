"""Recovery: password change and reset, and email verification; the one-time links they
send by email. Knows nothing of HTTP."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog, own_account
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.db import after_commit, utcnow
from bigfootlive.errors import BadRequest, Conflict, Forbidden, NotFound
from bigfootlive.identity import lockout
from bigfootlive.identity import repository as repo
from bigfootlive.identity.accounts import set_password
from bigfootlive.identity.ports import IdentityState
from bigfootlive.identity.sessions import end_sessions
from bigfootlive.kit.crypto import hash_token, random_token
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import User, UserToken
from bigfootlive.tenants import service as tenants

PURPOSE_RESET = "password_reset"
PURPOSE_VERIFY = "email_verify"


class InvalidOneTimeToken(BadRequest):
    code = "invalid_token"
    message = "The link is invalid or has expired"


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
    record = await consume_user_token(session, token, PURPOSE_RESET)
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
    record = await consume_user_token(session, token, PURPOSE_VERIFY)
    user = await repo.get_user(session, record.tenant_id, record.user_id)
    if user is None:
        raise InvalidOneTimeToken()
    user.email_verified_at = utcnow()
    await AuditLog(session, meta, user.id).record(
        AuditAction.AUTH_EMAIL_VERIFIED, **own_account(user)
    )


async def reset_link_usable(session: AsyncSession, token: str) -> bool:
    """Whether a password-reset link would still be accepted (not used, not expired), without
    spending it: the reset page says so before the user types a new password."""
    if not 10 <= len(token) <= 200:
        return False
    record = await repo.find_user_token(session, hash_token(token), PURPOSE_RESET)
    return record is not None and record.used_at is None and record.expires_at > utcnow()


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


async def consume_user_token(session: AsyncSession, token: str, purpose: str) -> UserToken:
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
