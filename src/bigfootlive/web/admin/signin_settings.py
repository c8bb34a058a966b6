"""The admin console's sign-in settings: password policy, lockout, self-registration and its
default role, MFA policy and the factors members may enrol. Saved through the tenant settings
service of `PUT /api/tenant/info` (validation, audit `tenant.settings_change`); changing the
MFA policy needs a step-up, as the API's."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from pydantic import ValidationError
from starlette.responses import Response

from bigfootlive.authz.roles import Permission, Role
from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.errors import BigfootError
from bigfootlive.tenants import service as tenants
from bigfootlive.tenants.schemas import (
    ALL_FACTOR_TYPES,
    LockoutPolicy,
    MfaPolicy,
    PasswordPolicy,
    TenantSettingsPatch,
    TenantUpdate,
)
from bigfootlive.web.admin.common import admin_router, form_problems, message_of, step_up
from bigfootlive.web.guard import console_admin
from bigfootlive.web.render import page, redirect
from bigfootlive.web.session import BrowserSubject

PATH = "/admin/sign-in-settings"
ROLE_VALUES = frozenset(r.value for r in Role)
router = admin_router()
Number = Annotated[int, Form(ge=0, le=1_000_000)]
Flag = Annotated[bool, Form()]


def _context(settings: Any, **extra: Any) -> dict[str, Any]:
    return {
        "settings": settings,
        "roles": [r.value for r in Role if r is not Role.ADMIN],
        "all_roles": [r.value for r in Role],
        "factor_types": ALL_FACTOR_TYPES,
        "modes": ["off", "optional", "required", "required_for_roles"],
        **extra,
    }


@router.get("/sign-in-settings")
async def settings_form(
    request: Request, subject: BrowserSubject, session: ReadSession, saved: str = ""
) -> Response:
    admin = console_admin(subject, Permission.TENANT_UPDATE)
    tenant = await tenants.require_tenant(session, admin.tenant_id)
    context = _context(tenants.settings_of(tenant), notice="Saved." if saved else None)
    return page(request, "admin/signin_settings.html", context)


@router.post("/sign-in-settings")
async def save_settings(
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    min_length: Number,
    history: Number,
    threshold: Number,
    base_delay_seconds: Number,
    max_delay_seconds: Number,
    mfa_mode: Annotated[str, Form(max_length=32)],
    default_role: Annotated[str, Form(max_length=16)] = "viewer",
    require_upper: Flag = False,
    require_lower: Flag = False,
    require_digit: Flag = False,
    require_symbol: Flag = False,
    allow_self_registration: Flag = False,
    allow_backup_codes: Flag = False,
    mfa_roles: Annotated[list[str] | None, Form()] = None,
    allowed_factors: Annotated[list[str] | None, Form()] = None,
) -> Response:
    admin = console_admin(subject, Permission.TENANT_UPDATE)
    tenant = await tenants.require_tenant(session, admin.tenant_id)
    current = tenants.settings_of(tenant)
    try:
        mfa = MfaPolicy.model_validate(
            {
                "mode": mfa_mode,
                "roles": mfa_roles or [],
                "allowed_factors": allowed_factors or [],
                "allow_backup_codes": allow_backup_codes,
            }
        )
        patch = TenantSettingsPatch(
            allow_self_registration=allow_self_registration,
            default_role=Role(default_role) if default_role in ROLE_VALUES else None,
            password_policy=PasswordPolicy(
                min_length=min_length,
                require_upper=require_upper,
                require_lower=require_lower,
                require_digit=require_digit,
                require_symbol=require_symbol,
                history=history,
            ),
            lockout=LockoutPolicy(
                threshold=threshold,
                base_delay_seconds=base_delay_seconds,
                max_delay_seconds=max_delay_seconds,
            ),
            mfa=mfa if mfa != current.mfa else None,
        )
    except ValidationError as exc:
        error = "The settings are not valid: " + form_problems(exc)
        return page(request, "admin/signin_settings.html", _context(current, error=error), 422)
    if patch.mfa is not None:
        # Weakening MFA would otherwise be one stolen session away (as `PUT /api/tenant/info`).
        if (stepped := await step_up(request, state, session, meta, admin, PATH)) is not None:
            return stepped
    try:
        await tenants.update_tenant_audited(
            session, meta, admin.user_id, tenant, TenantUpdate(settings=patch)
        )
    except BigfootError as exc:
        await session.rollback()
        context = _context(current, error=message_of(exc))
        return page(request, "admin/signin_settings.html", context, exc.status_code)
    return redirect(request, f"{PATH}?saved=1")
