"""The end of every SSO sign-in: find, link or provision (JIT) the user, map roles, sign in.

Every flow ends in `identity.sign_in.finish_sign_in`, like a password sign-in, so sessions,
tokens and the tenant's MFA policy are the same whatever the method.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.roles import Role
from bigfootlive.db import utcnow
from bigfootlive.errors import Conflict, Forbidden
from bigfootlive.identity import accounts, lockout
from bigfootlive.identity import repository as identity_repo
from bigfootlive.identity import sign_in as identity_sign_in
from bigfootlive.identity.ports import IdentityState
from bigfootlive.kit.crypto import random_token
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import SsoIdentity, Tenant, User
from bigfootlive.sso import repository as repo
from bigfootlive.sso.base import ExternalIdentity, SsoRejected
from bigfootlive.sso.provider import LoadedProvider
from bigfootlive.sso.schemas import ProviderSettings
from bigfootlive.tenants import service as tenants

HANDOFF_TTL = 60


@dataclass(frozen=True, slots=True)
class SignInOutcome:
    """The result of `finish_sign_in`, and where to send the browser with it, if anywhere."""

    result: BaseModel
    redirect_uri: str | None = None
    handoff_code: str | None = None

    def redirect_location(self) -> str | None:
        if self.redirect_uri is None or self.handoff_code is None:
            return None
        sep = "&" if "?" in self.redirect_uri else "?"
        return f"{self.redirect_uri}{sep}{urlencode({'sso_code': self.handoff_code})}"


def mapped_role(settings: ProviderSettings, groups: list[str]) -> Role:
    """The highest role any of the user's groups maps to, else the provider's default role."""
    lowered = {k.lower(): v for k, v in settings.role_mapping.items()}
    roles = [lowered[g.lower()] for g in groups if g.lower() in lowered]
    return max(roles, default=settings.default_role)


async def sign_in(
    state: IdentityState,
    session: AsyncSession,
    meta: RequestMeta,
    tenant: Tenant,
    provider: LoadedProvider,
    ext: ExternalIdentity,
    *,
    redirect_uri: str | None,
) -> SignInOutcome:
    """Find, link or provision the user of `tenant`, apply role mapping, and finish sign-in."""
    settings = provider.settings
    row = provider.row
    link = await repo.find_link(session, tenant.id, row.id, ext.subject)
    provisioned = False
    if link is not None:
        sso_identity, user = link
    else:
        if not ext.email:
            raise SsoRejected("The identity provider sent no email address", code="sso_no_email")
        found = await identity_repo.get_user_by_email(session, tenant.id, ext.email)
        if found is not None:
            if not ext.email_verified:
                raise SsoRejected(
                    "The identity provider did not verify this email address",
                    code="sso_email_unverified",
                )
            user = found
        elif settings.jit_provisioning:
            user = await accounts.create_account(
                state,
                session,
                tenant=tenant,
                email=ext.email,
                display_name=(ext.name or ext.email.split("@")[0])[:100],
                role=mapped_role(settings, ext.groups),
                password=None,
                email_verified=ext.email_verified,
            )
            provisioned = True
            await AuditLog(session, meta, user.id).record(
                AuditAction.SSO_USER_PROVISIONED,
                tenant_id=tenant.id,
                target_type="user",
                target_id=user.id,
                details={"provider_id": str(row.id), "role": user.role},
            )
        else:
            raise Forbidden(
                "No account exists for this user and provisioning is off", code="sso_no_account"
            )
        sso_identity = SsoIdentity(
            tenant_id=tenant.id, provider_id=row.id, user_id=user.id, subject=ext.subject
        )
        session.add(sso_identity)
    if user.tenant_id != tenant.id:  # unreachable by construction; belt and braces
        raise SsoRejected()
    if not user.is_active:
        raise Forbidden("The account is disabled", code="account_disabled")
    await _apply_role(session, meta, tenant, user, mapped_role(settings, ext.groups))
    if ext.name and ext.name[:100] != user.display_name:
        user.display_name = ext.name[:100]
    now = utcnow()
    sso_identity.last_login_at = now
    user.last_login_at = now
    await lockout.clear(session, tenant.id, user.email)
    method = row.protocol
    await AuditLog(session, meta, user.id).record(
        AuditAction.AUTH_LOGIN,
        tenant_id=tenant.id,
        target_type="user",
        target_id=user.id,
        details={
            "method": f"sso:{method}",
            "provider_id": str(row.id),
            "provisioned": provisioned,
            "idp_mfa": ext.mfa,
        },
    )
    amr = ["ldap"] if method == "ldap" else ["ext", method]
    if ext.mfa:
        amr.append("mfa")
    result = await identity_sign_in.finish_sign_in(
        state, session, user=user, tenant=tenant, meta=meta, amr=amr
    )
    if redirect_uri is None:
        return SignInOutcome(result=result)
    code = random_token()
    sealed = state.secrets.encrypt(result.model_dump_json(), context=f"sso-handoff:{code}")
    await state.cache.set(f"sso:handoff:{code}", sealed.encode(), ttl=HANDOFF_TTL)
    return SignInOutcome(result=result, redirect_uri=redirect_uri, handoff_code=code)


async def _apply_role(
    session: AsyncSession, meta: RequestMeta, tenant: Tenant, user: User, role: Role
) -> None:
    if user.role == role.value:
        return
    try:
        await tenants.ensure_not_last_admin(session, user, role, None)
    except Conflict:
        # Never let an IdP's group mapping leave the tenant without an admin.
        await AuditLog(session, meta, user.id).record(
            AuditAction.SSO_ROLE_MAPPING_SKIPPED,
            tenant_id=tenant.id,
            target_type="user",
            target_id=user.id,
            details={"kept": user.role, "mapped": role.value, "reason": "last_admin"},
        )
        return
    await AuditLog(session, meta, user.id).record(
        AuditAction.TENANT_ROLE_CHANGE,
        tenant_id=tenant.id,
        target_type="user",
        target_id=user.id,
        details={"from": user.role, "to": role.value, "source": "sso_role_mapping"},
    )
    user.role = role.value
