"""The identity domain's hooks: the sign-in gates other domains add (wired in the composition
root; identity imports neither SSO nor MFA)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.errors import Forbidden
from bigfootlive.identity.ports import IdentityState
from bigfootlive.identity.schemas import MfaChallenge
from bigfootlive.kit.hooks import Hook, Query
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import Tenant, User


class PasswordSignInRefused(Forbidden):
    """Raised by a PASSWORD_SIGN_IN handler: this user may not sign in with a password."""


@dataclass(frozen=True, slots=True)
class PasswordSignIn:
    """A password sign-in whose password was right, before any session exists."""

    session: AsyncSession
    user: User


@dataclass(frozen=True, slots=True)
class SignIn:
    """A sign-in about to become a session (password, SSO, ...), `amr` as proved so far."""

    state: IdentityState
    session: AsyncSession
    user: User
    tenant: Tenant
    meta: RequestMeta
    amr: list[str]
    # How many usable second factors the user has, when the sign-in read it with the account
    # (confirmed, of the tenant's allowed types); None: not read, ask the database.
    usable_factors: int | None = None


# The SSO domain refuses when its provider requires SSO (break-glass admins excepted).
PASSWORD_SIGN_IN: Hook[PasswordSignIn] = Hook("identity.password_sign_in")
# The MFA domain answers with the challenge to pass first, or None.
SIGN_IN_CHALLENGE: Query[SignIn, MfaChallenge] = Query("identity.sign_in_challenge")
