"""Accounts: creating them, their passwords (policy and history), their audit trail.
Knows nothing of HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit.filters import AuditFilter
from bigfootlive.authz.roles import Permission, Role
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.db import utcnow
from bigfootlive.errors import BadRequest, Conflict, Forbidden
from bigfootlive.identity import repository as repo
from bigfootlive.identity.passwords import check_password_policy
from bigfootlive.identity.ports import IdentityState
from bigfootlive.identity.schemas import UserOut
from bigfootlive.models import AuditRecord, PasswordHistory, Tenant, User
from bigfootlive.tenants import service as tenants
from bigfootlive.tenants.schemas import TenantSettings
from bigfootlive.webhooks import service as webhooks


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


# ---------------------------------------------------------------- audit


async def list_audit(
    session: AsyncSession,
    subject: AuthSubject,
    *,
    scope: str,
    filters: AuditFilter,
    cursor: str | None,
    limit: int,
) -> Sequence[AuditRecord]:
    if scope == "tenant":
        if not subject.can(Permission.AUDIT_READ_TENANT):
            raise Forbidden(code="insufficient_role", required=str(Permission.AUDIT_READ_TENANT))
        return await repo.audit_for_user(
            session, subject.tenant_id, None, filters=filters, cursor=cursor, limit=limit
        )
    return await repo.audit_for_user(
        session, subject.tenant_id, subject.user_id, filters=filters, cursor=cursor, limit=limit
    )
