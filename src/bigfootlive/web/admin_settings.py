"""The tenant admin console's chat and branding settings (issue 16), and the branding the
tenant's viewer pages load.

* `/admin/chat`: the blocked words (one per line) chat messages are refused for;
* `/admin/branding`: display name, accent colour and logo (an uploaded PNG, JPEG or WebP);
* `/branding/{tenant_id}.css` and `/branding/{tenant_id}/logo`: what the watch page of the
  tenant's events loads (a stylesheet and an image of our own origin: the CSP is unchanged).

Saving goes through `tenants.service.update_tenant`, like `PUT /api/tenant/info` (tenant admins,
`tenant:update`), audited as `tenant.settings_change`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.roles import Permission
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.deps import DbSession, Meta, ReadSession
from bigfootlive.errors import BigfootError, NotFound
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import Tenant
from bigfootlive.routing import JsonRoute
from bigfootlive.tenants import branding as brand
from bigfootlive.tenants import service as tenants
from bigfootlive.tenants.schemas import TenantSettingsPatch, TenantUpdate
from bigfootlive.web.guard import console_admin
from bigfootlive.web.render import finish, page, redirect
from bigfootlive.web.security import check_csrf
from bigfootlive.web.session import BrowserSubject

router = APIRouter(
    prefix="/admin",
    tags=["web"],
    route_class=JsonRoute,
    include_in_schema=False,
    dependencies=[Depends(check_csrf)],
)
public_router = APIRouter(
    prefix="/branding", tags=["web"], route_class=JsonRoute, include_in_schema=False
)


async def _save(
    session: AsyncSession, meta: RequestMeta, admin: AuthSubject, patch: TenantSettingsPatch
) -> None:
    tenant = await tenants.require_tenant(session, admin.tenant_id)
    changed = await tenants.update_tenant(session, tenant, TenantUpdate(settings=patch))
    if changed:
        await AuditLog(session, meta, admin.user_id).record(
            AuditAction.TENANT_SETTINGS_CHANGE,
            tenant_id=tenant.id,
            target_type="tenant",
            target_id=tenant.id,
            details={"changed": changed},
        )


# ---------------------------------------------------------------- chat: blocked words


@router.get("/chat")
async def chat_settings(
    request: Request, subject: BrowserSubject, session: ReadSession
) -> Response:
    admin = console_admin(subject, Permission.TENANT_UPDATE)
    settings = tenants.settings_of(await tenants.require_tenant(session, admin.tenant_id))
    return page(request, "admin/chat.html", {"words": "\n".join(settings.chat_blocked_words)})


@router.post("/chat")
async def chat_save(
    request: Request,
    subject: BrowserSubject,
    session: DbSession,
    meta: Meta,
    words: Annotated[str, Form(max_length=70_000)] = "",
) -> Response:
    admin = console_admin(subject, Permission.TENANT_UPDATE)
    listed = list(dict.fromkeys(w.strip() for w in words.splitlines() if w.strip()))
    try:
        patch = TenantSettingsPatch(chat_blocked_words=listed)
    except ValidationError:
        error = "One word or phrase per line, each at most 64 characters, at most 1000."
        return page(request, "admin/chat.html", {"words": words, "error": error}, 422)
    await _save(session, meta, admin, patch)
    return redirect(request, "/admin/chat?saved=1")


# ---------------------------------------------------------------- branding


def _branding_context(settings: brand.Branding, tenant_id: uuid.UUID) -> dict[str, object]:
    return {"branding": settings, "tenant_id": tenant_id, "form": settings.model_dump()}


@router.get("/branding")
async def branding_form(
    request: Request, subject: BrowserSubject, session: ReadSession
) -> Response:
    admin = console_admin(subject, Permission.TENANT_UPDATE)
    settings = tenants.settings_of(await tenants.require_tenant(session, admin.tenant_id))
    return page(
        request, "admin/branding.html", _branding_context(settings.branding, admin.tenant_id)
    )


@router.post("/branding")
async def branding_save(
    request: Request,
    subject: BrowserSubject,
    session: DbSession,
    meta: Meta,
    display_name: Annotated[str, Form(max_length=100)] = "",
    accent_color: Annotated[str, Form(max_length=7)] = "",
    remove_logo: Annotated[bool, Form()] = False,
    logo: Annotated[UploadFile | None, File()] = None,
) -> Response:
    admin = console_admin(subject, Permission.TENANT_UPDATE)
    current = tenants.settings_of(await tenants.require_tenant(session, admin.tenant_id)).branding
    logo_uri = None if remove_logo else current.logo
    form = {"display_name": display_name, "accent_color": accent_color}
    try:
        if logo is not None and logo.filename:
            raw = await logo.read(brand.LOGO_MAX_BYTES + 1)
            media_type = logo.content_type or ""
            if media_type not in brand.LOGO_TYPES:
                raise ValueError("the logo must be a PNG, JPEG or WebP image")
            logo_uri = brand.logo_data_uri(media_type, raw)
        chosen = brand.Branding(
            display_name=display_name.strip() or None,
            accent_color=accent_color.strip() or None,
            logo=logo_uri,
        )
    except (ValidationError, ValueError) as exc:
        message = str(exc)
        if isinstance(exc, ValidationError):
            message = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        message = message[:1].upper() + message[1:]  # a sentence on the page (the model's are not)
        context = {**_branding_context(current, admin.tenant_id), "form": form, "error": message}
        return page(request, "admin/branding.html", context, 422)
    try:
        await _save(session, meta, admin, TenantSettingsPatch(branding=chosen))
    except BigfootError as exc:
        await session.rollback()
        context = {**_branding_context(current, admin.tenant_id), "error": exc.message}
        return page(request, "admin/branding.html", context, exc.status_code)
    return redirect(request, "/admin/branding?saved=1")


# ---------------------------------------------------------------- what viewer pages load


def viewer_branding(tenant: Tenant | None) -> brand.Branding | None:
    """The branding a viewer page of `tenant` shows, None when it has none."""
    chosen = None if tenant is None else tenants.settings_of(tenant).branding
    return (
        chosen if chosen and (chosen.logo or chosen.display_name or chosen.accent_color) else None
    )


async def _branding_of(session: AsyncSession, tenant_id: uuid.UUID) -> brand.Branding:
    tenant = await tenants.get_tenant(session, tenant_id)
    if tenant is None or not tenant.is_active:
        raise NotFound("No such tenant", code="tenant_not_found")
    return tenants.settings_of(tenant).branding


@public_router.get("/{tenant_id}.css")
async def branding_css(request: Request, tenant_id: uuid.UUID, session: ReadSession) -> Response:
    chosen = await _branding_of(session, tenant_id)
    body = f":root {{ --accent: {chosen.accent_color}; }}\n" if chosen.accent_color else ""
    response = finish(request, Response(body, media_type="text/css"))
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


@public_router.get("/{tenant_id}/logo")
async def branding_logo(request: Request, tenant_id: uuid.UUID, session: ReadSession) -> Response:
    chosen = await _branding_of(session, tenant_id)
    if chosen.logo is None:
        raise NotFound("No logo", code="logo_not_found")
    media_type, raw = brand.logo_bytes(chosen.logo)
    response = finish(request, Response(raw, media_type=media_type))
    response.headers["Cache-Control"] = "public, max-age=60"
    return response
