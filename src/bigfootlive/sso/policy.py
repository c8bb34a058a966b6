"""The tenant-wide consequence of SSO for password sign-in ("SSO required" + break-glass).

Identity asks through its PASSWORD_SIGN_IN hook (wired in the composition root).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.authz.roles import Role
from bigfootlive.identity.hooks import PasswordSignInRefused
from bigfootlive.models import User
from bigfootlive.sso.policy_cache import SsoPolicyCache


class SsoRequired(PasswordSignInRefused):
    code = "sso_required"
    message = "This organisation signs in through its identity provider"


async def check_password_login(policies: SsoPolicyCache, session: AsyncSession, user: User) -> None:
    """Refuse a password sign-in when an enabled provider of the user's tenant requires SSO.

    Break-glass: the admins listed in that provider's `break_glass_emails`, or, when the list
    is empty, every active admin of the tenant, may still sign in with a password.
    """
    for required in await policies.requirements(session, user.tenant_id):
        allowed = required.break_glass_emails
        is_admin = user.role == Role.ADMIN.value
        if is_admin and (not allowed or user.email.lower() in allowed):
            continue
        raise SsoRequired(provider_id=str(required.provider_id))
