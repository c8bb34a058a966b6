from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bigfootlive.authz.roles import Role
from bigfootlive.tenants.branding import Branding

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


class PasswordPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_length: int = Field(12, ge=8, le=128)
    require_upper: bool = False
    require_lower: bool = False
    require_digit: bool = False
    require_symbol: bool = False
    history: int = Field(5, ge=0, le=24)


class LockoutPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: int = Field(5, ge=3, le=100)
    base_delay_seconds: int = Field(30, ge=1, le=3600)
    max_delay_seconds: int = Field(3600, ge=60, le=86_400)


FactorType = Literal["totp", "webauthn", "email", "sms"]
ALL_FACTOR_TYPES: tuple[FactorType, ...] = ("totp", "webauthn", "email", "sms")


class MfaPolicy(BaseModel):
    """Who must use a second factor, and which kinds of factor members may enrol.

    off: no MFA at all (no enrolment, no challenge). optional: members may enrol; enrolled
    members are challenged. required: every member must; required_for_roles: members whose role
    is in `roles` must. A member who must but has no factor is guided through setup at sign-in.
    """

    model_config = ConfigDict(extra="forbid")

    mode: Literal["off", "optional", "required", "required_for_roles"] = "optional"
    roles: list[Role] = Field(default_factory=list, max_length=4)
    allowed_factors: list[FactorType] = Field(
        default_factory=lambda: list(ALL_FACTOR_TYPES), min_length=1, max_length=4
    )
    allow_backup_codes: bool = True

    def required_for(self, role: Role) -> bool:
        if self.mode == "required":
            return True
        return self.mode == "required_for_roles" and role in self.roles


class TenantSettings(BaseModel):
    """Tenant policy. Stored as JSON on the tenant row; every field has a safe default."""

    model_config = ConfigDict(extra="forbid")

    allow_self_registration: bool = False
    default_role: Role = Role.VIEWER
    password_policy: PasswordPolicy = Field(default_factory=PasswordPolicy)
    lockout: LockoutPolicy = Field(default_factory=LockoutPolicy)
    allowed_redirect_urls: list[str] = Field(default_factory=list, max_length=50)
    mfa: MfaPolicy = Field(default_factory=MfaPolicy)
    # Chat messages containing one of these words (case-insensitive, whole word) are refused.
    chat_blocked_words: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=1000
    )
    # The tenant's name, logo and accent colour on its viewer pages (tenants/branding.py).
    branding: Branding = Field(default_factory=Branding)

    @field_validator("default_role")
    @classmethod
    def _default_role_not_admin(cls, value: Role) -> Role:
        if value is Role.ADMIN:
            raise ValueError("the default role cannot be admin")
        return value


class TenantSettingsPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allow_self_registration: bool | None = None
    default_role: Role | None = None
    password_policy: PasswordPolicy | None = None
    lockout: LockoutPolicy | None = None
    allowed_redirect_urls: list[str] | None = Field(None, max_length=50)
    mfa: MfaPolicy | None = None
    chat_blocked_words: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        None, max_length=1000
    )
    branding: Branding | None = None


class TenantOut(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    settings: TenantSettings
    email_domains: list[str]
    created_at: dt.datetime


class TenantUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    settings: TenantSettingsPatch | None = None


class TenantUserOut(BaseModel):
    id: uuid.UUID
    email: str
    display_name: str
    role: Role
    is_active: bool
    email_verified: bool
    created_at: dt.datetime
    last_login_at: dt.datetime | None


class TenantUserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    display_name: str = Field(min_length=1, max_length=100)
    role: Role = Role.VIEWER
    password: str | None = Field(None, max_length=128)


class TenantUserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    is_active: bool | None = None


class TenantStatusOut(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    is_active: bool
    changed: bool  # False when the tenant already had this status


class PlatformTenantOut(BaseModel):
    """A tenant as the platform console lists it."""

    id: uuid.UUID
    slug: str
    name: str
    is_active: bool
    members: int
    created_at: dt.datetime


class PlatformTenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(min_length=1, max_length=63)
    name: str = Field(min_length=1, max_length=200)
    email_domains: list[Annotated[str, Field(min_length=3, max_length=253)]] = Field(
        default_factory=list, max_length=20
    )


class PlatformTenantUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
