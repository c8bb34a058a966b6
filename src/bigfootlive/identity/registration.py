"""Self-registration that does not tell which addresses have an account.

On a tenant that allows sign-up, `register` answers the same for every address after the same
work (the password policy, one argon2 hash, one row, one email):
- a new address is sent a link; opening it creates the account (`confirm_email`), and then the
  user signs in. Until then there is no account: signing in fails like for any unknown address;
- the owner of an existing account is told that someone tried to register with the address,
  with a link to reset the password if it was them.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog, own_account
from bigfootlive.db import utcnow
from bigfootlive.errors import Forbidden, NotFound
from bigfootlive.identity import accounts, recovery
from bigfootlive.identity import repository as repo
from bigfootlive.identity.ports import IdentityState
from bigfootlive.kit.crypto import hash_token, random_token
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import PendingRegistration, Tenant, User
from bigfootlive.tenants import service as tenants


class RegistrationDisabled(Forbidden):
    code = "registration_disabled"
    message = "This tenant does not allow self-registration"


async def register(
    state: IdentityState,
    session: AsyncSession,
    meta: RequestMeta,
    *,
    tenant_slug: str | None,
    email: str,
    password: str,
    display_name: str,
) -> None:
    email = email.lower()
    limit = state.settings.register_rate_limit
    await state.limiter.check(limit, "register-ip", meta.ip)
    await state.limiter.check(limit, "register-email", hash_token(email))  # mails to one address
    tenant = await tenants.resolve_tenant(session, tenant_slug, email)
    if tenant is None:
        raise NotFound("No such tenant", code="tenant_not_found")
    policy = tenants.settings_of(tenant)
    if not policy.allow_self_registration:
        raise RegistrationDisabled()
    accounts.check_password_rules(password, email, policy)
    password_hash = await state.passwords.hash(password)  # on both paths: the same cost
    owner = await repo.get_user_by_email(session, tenant.id, email)
    if owner is None:
        await _send_confirmation(state, session, meta, tenant, email, display_name, password_hash)
    else:
        await _tell_owner(state, session, meta, owner)


async def _send_confirmation(
    state: IdentityState,
    session: AsyncSession,
    meta: RequestMeta,
    tenant: Tenant,
    email: str,
    display_name: str,
    password_hash: str,
) -> None:
    token = random_token()
    ttl = state.settings.email_verification_ttl_seconds
    session.add(
        PendingRegistration(
            tenant_id=tenant.id,
            email=email,
            display_name=display_name,
            password_hash=password_hash,
            token_hash=hash_token(token),
            expires_at=utcnow() + dt.timedelta(seconds=ttl),
        )
    )
    await AuditLog(session, meta, None).record(
        AuditAction.AUTH_REGISTER_REQUEST, tenant_id=tenant.id
    )
    link = f"{state.settings.public_base_url}/verify-email?token={token}"
    recovery.mail_after_commit(
        state,
        session,
        email,
        "Confirm your email address",
        f"Welcome to BigfootLive, {display_name}.\n\n"
        f"To create your account, confirm your email address by opening:\n{link}\n\n"
        f"Then sign in with the password you chose. The link expires in {ttl // 3600} hours. "
        "If you did not sign up, ignore this email.",
    )


async def _tell_owner(
    state: IdentityState, session: AsyncSession, meta: RequestMeta, owner: User
) -> None:
    await AuditLog(session, meta, None).record(
        AuditAction.AUTH_REGISTER_REQUEST,
        tenant_id=owner.tenant_id,
        result="failure",
        target_type="user",
        target_id=owner.id,
        details={"reason": "email_taken"},
    )
    if not owner.is_active:
        return  # like a password reset request: a disabled account gets no link
    ttl = state.settings.password_reset_ttl_seconds
    token = recovery.new_user_token(session, owner, recovery.PURPOSE_RESET, ttl)
    link = f"{state.settings.public_base_url}/reset-password?token={token}"
    recovery.mail_after_commit(
        state,
        session,
        owner.email,
        "Someone tried to register with your address",
        "Someone tried to create a BigfootLive account with this email address, which already "
        "has one. Nothing was changed.\n\n"
        "If it was you, sign in with your password; if you forgot it, choose a new one by "
        f"opening:\n{link}\n\n"
        f"The link works once and expires in {ttl // 60} minutes. "
        "If it was not you, ignore this email.",
    )


async def confirm_email(
    state: IdentityState, session: AsyncSession, meta: RequestMeta, *, token: str
) -> None:
    """The emailed link: creates a registered account, or verifies an existing one's address."""
    pending = await repo.find_pending_registration(session, hash_token(token))
    if pending is None:
        await recovery.verify_email(state, session, meta, token=token)
        return
    tenant_id, email = pending.tenant_id, pending.email
    display_name, password_hash = pending.display_name, pending.password_hash
    if pending.expires_at <= utcnow() or not await repo.claim_pending_registration(
        session, pending.id
    ):
        raise recovery.InvalidOneTimeToken()
    tenant = await tenants.get_tenant(session, tenant_id)
    if tenant is None:
        raise recovery.InvalidOneTimeToken()
    policy = tenants.settings_of(tenant)
    if not policy.allow_self_registration:
        raise RegistrationDisabled()
    user = await accounts.create_account(
        state,
        session,
        tenant=tenant,
        email=email,
        display_name=display_name,
        role=policy.default_role,
        password=None,
        password_hash=password_hash,
        email_verified=True,
    )
    # Other links sent to the address (registered twice) are spent with this one.
    await repo.drop_pending_registrations(session, tenant.id, email)
    await AuditLog(session, meta, user.id).record(AuditAction.AUTH_REGISTER, **own_account(user))
