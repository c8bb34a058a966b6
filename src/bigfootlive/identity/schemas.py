from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from bigfootlive.authz.roles import Role
from bigfootlive.kit.credentials import Credentials
from bigfootlive.kit.emails import PlainEmailStr


class RegisterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str | None = Field(
        None, max_length=63, description="Tenant slug; else found by email domain"
    )
    email: EmailStr
    password: str = Field(max_length=128)
    display_name: str = Field(min_length=1, max_length=100)


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str | None = Field(None, max_length=63)
    email: PlainEmailStr  # EmailStr, without email-validator's parse for a plain address
    password: str = Field(max_length=128)


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=10, max_length=200)


class PasswordChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(max_length=128)
    new_password: str = Field(max_length=128)


class PasswordForgotIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str | None = Field(None, max_length=63)
    email: EmailStr


class InvitationAcceptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=10, max_length=200)
    password: str = Field(max_length=128)


class PasswordResetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=10, max_length=200)
    new_password: str = Field(max_length=128)


class EmailVerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=10, max_length=200)


class UserOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_slug: str
    email: str
    display_name: str
    role: Role
    is_platform_admin: bool
    email_verified: bool
    created_at: dt.datetime


class TokenPair(Credentials):
    status: Literal["ok"] = "ok"
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105
    access_token: str
    expires_in: int
    refresh_token: str
    session_id: uuid.UUID
    user: UserOut


class MfaFactorBrief(BaseModel):
    id: uuid.UUID
    type: str
    name: str


class MfaChallenge(Credentials):
    """Sign-in (or a sensitive action) needs a second factor before tokens are issued.

    mfa_required: prove one of `factors` (or a backup code) at `POST /api/auth/mfa/verify`.
    mfa_enrollment_required: the tenant requires MFA and the user has none; the token only
    allows `POST /api/auth/mfa/setup` and `/setup/confirm`, whose confirmation signs in.
    step_up_required: an existing session must prove a factor again (see docs/mfa.md).
    """

    status: Literal["mfa_required", "mfa_enrollment_required", "step_up_required"]
    challenge_token: str
    expires_in: int
    factors: list[MfaFactorBrief] = Field(default_factory=list)
    methods: list[str] = Field(default_factory=list, description="Verification methods usable")
    allowed_factor_types: list[str] = Field(
        default_factory=list, description="Factor types that may be enrolled"
    )


SignInResult = Annotated[TokenPair | MfaChallenge, Field(discriminator="status")]


class SessionOut(BaseModel):
    id: uuid.UUID
    current: bool
    user_agent: str
    ip: str
    amr: list[str]
    created_at: dt.datetime
    last_seen_at: dt.datetime
    expires_at: dt.datetime


class AuditOut(BaseModel):
    id: uuid.UUID
    action: str
    result: str
    actor_id: uuid.UUID | None
    target_type: str | None
    target_id: str | None
    ip: str
    user_agent: str
    request_id: str
    details: dict[str, Any]
    created_at: dt.datetime


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"


class RegistrationStarted(BaseModel):
    """The same answer whether or not the address has an account: see the email."""

    status: Literal["verification_sent"] = "verification_sent"
