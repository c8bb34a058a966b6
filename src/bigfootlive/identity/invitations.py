"""Invitations: an administrator adds a member without a password; the member gets an email
with a one-time link, chooses a password on the accept page and is signed in (through the
ordinary sign-in, so the tenant's MFA policy applies). Knows nothing of HTTP."""

from __future__ import annotations

import dataclasses
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog, own_account
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.db import utcnow
from bigfootlive.errors import Conflict, NotFound
from bigfootlive.identity import repository as repo
from bigfootlive.identity.accounts import set_password
from bigfootlive.identity.ports import IdentityState
from bigfootlive.identity.recovery import (
    InvalidOneTimeToken,
    consume_user_token,
    mail_after_commit,
    new_user_token,
)
from bigfootlive.kit.crypto import hash_token
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import Tenant, User
from bigfootlive.tenants import service as tenants

PURPOSE_INVITE = "invitation"


@dataclasses.dataclass(frozen=True, slots=True)
class Invitation:
    """What the accept page shows before the member chooses a password."""

    email: str
    display_name: str
    tenant_slug: str
    tenant_name: str


async def send_invitation(
    state: IdentityState,
    session: AsyncSession,
    meta: RequestMeta,
    *,
    actor: AuthSubject,
    tenant: Tenant,
    user: User,
) -> None:
    """Email `user` a one-time link to choose a password (INVITATION_TTL_SECONDS); audited."""
    if user.password_hash is not None:
        raise Conflict("This member already has a password", code="invitation_accepted")
    if not user.is_active:
        raise Conflict("This member is disabled", code="user_disabled")
    ttl = state.settings.invitation_ttl_seconds
    token = new_user_token(session, user, PURPOSE_INVITE, ttl)
    await AuditLog(session, meta, actor.user_id).record(
        AuditAction.TENANT_USER_INVITE,
        tenant_id=user.tenant_id,
        target_type="user",
        target_id=user.id,
    )
    link = f"{state.settings.public_base_url}/invite/accept?token={token}"
    days = max(1, ttl // 86400)
    mail_after_commit(
        state,
        session,
        user.email,
        f"You are invited to {tenant.name} on BigfootLive",
        f"Hello {user.display_name},\n\nAn administrator of {tenant.name} added you as a member. "
        f"To choose your password and sign in, open:\n{link}\n\n"
        f"The link works once and expires in {days} day{'s' if days != 1 else ''}.",
    )


async def resend(
    state: IdentityState,
    session: AsyncSession,
    meta: RequestMeta,
    actor: AuthSubject,
    user_id: uuid.UUID,
) -> User:
    user = await repo.get_user(session, actor.tenant_id, user_id)
    if user is None:
        raise NotFound("No such user", code="user_not_found")
    tenant = await tenants.require_tenant(session, actor.tenant_id)
    await send_invitation(state, session, meta, actor=actor, tenant=tenant, user=user)
    return user


async def peek(session: AsyncSession, token: str) -> Invitation:
    """The invitation behind a link, without using it up; invalid_token when it cannot be used."""
    record = await repo.find_user_token(session, hash_token(token), PURPOSE_INVITE)
    if record is None or record.used_at is not None or record.expires_at <= utcnow():
        raise InvalidOneTimeToken()
    user = await repo.get_user(session, record.tenant_id, record.user_id)
    tenant = await tenants.get_tenant(session, record.tenant_id)
    if user is None or tenant is None or not user.is_active or user.password_hash is not None:
        raise InvalidOneTimeToken()
    return Invitation(user.email, user.display_name, tenant.slug, tenant.name)


async def accept(
    state: IdentityState, session: AsyncSession, meta: RequestMeta, *, token: str, password: str
) -> tuple[User, Tenant]:
    """Use the link: set the password (tenant policy) and mark the address verified (the link
    reached it). The caller signs the member in with `sign_in.login`."""
    record = await consume_user_token(session, token, PURPOSE_INVITE)
    user = await repo.get_user(session, record.tenant_id, record.user_id)
    tenant = await tenants.get_tenant(session, record.tenant_id)
    if user is None or tenant is None or not user.is_active or user.password_hash is not None:
        raise InvalidOneTimeToken()
    await set_password(state, session, user, password, tenants.settings_of(tenant))
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
    await AuditLog(session, meta, user.id).record(
        AuditAction.AUTH_INVITATION_ACCEPT, **own_account(user)
    )
    await session.flush()
    return user, tenant
