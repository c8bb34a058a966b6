"""The admin console's members: the list (search, role and status filters, pagination), a
member's page (role, status, MFA, invitation, sessions) and the form that adds a member by
invitation. Tenant admins only (the API's `users:manage`); the same services as
`/api/tenant/users`; another tenant's member answers 404, like the API."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Form, Query, Request
from pydantic import EmailStr, TypeAdapter, ValidationError
from starlette.responses import Response

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.roles import Role
from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.errors import BigfootError
from bigfootlive.identity import accounts, invitations, sessions
from bigfootlive.kit.pagination import page_of
from bigfootlive.mfa import repository as mfa_repo
from bigfootlive.tenants import service as tenants
from bigfootlive.web.admin.common import admin_router, message_of, step_up
from bigfootlive.web.guard import console_admin
from bigfootlive.web.render import page, redirect
from bigfootlive.web.session import BrowserSubject

PAGE_SIZE = 25
ROLES = [r.value for r in Role]
_EMAIL = TypeAdapter(EmailStr)

router = admin_router()


@router.get("")
async def console_home(request: Request, subject: BrowserSubject) -> Response:
    """`/admin`, typed by hand: the console's first page (the top bar's "Admin" link)."""
    console_admin(subject)  # the sign-in page, or 403, like the console's other pages
    return redirect(request, "/admin/users")


@router.get("/users")
async def users(
    request: Request,
    subject: BrowserSubject,
    state: State,
    q: Annotated[str | None, Query(max_length=100)] = None,
    role: Annotated[Role | None, Query()] = None,
    status: Annotated[str | None, Query(pattern="^(active|disabled)?$")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    admin = console_admin(subject)
    query = (q or "").strip() or None
    active = {"active": True, "disabled": False}.get(status or "")
    async with state.db.reads() as conn:
        rows = await tenants.list_users(
            conn, admin.tenant_id, query=query, cursor=cursor, limit=PAGE_SIZE,
            role=role, active=active,
        )  # fmt: skip
    items, next_cursor = page_of(rows, PAGE_SIZE)
    filters = {
        k: v
        for k, v in {"q": query, "role": role.value if role else None, "status": status}.items()
        if v
    }
    next_url = None
    if next_cursor is not None:
        next_url = f"/admin/users?{urlencode({'cursor': next_cursor, **filters})}"
    context = {
        "members": items,
        "q": query or "",
        "role": role.value if role else "",
        "status": status or "",
        "roles": ROLES,
        "first_url": f"/admin/users?{urlencode(filters)}" if filters else "/admin/users",
        "next_url": next_url,
        "paged": cursor is not None,
        "filtered": bool(filters),
    }
    return page(request, "admin/users.html", context)


@router.get("/users/new")
async def new_member_form(request: Request, subject: BrowserSubject) -> Response:
    console_admin(subject)
    return page(request, "admin/new_user.html", {"form": {"role": "viewer"}, "roles": ROLES})


@router.post("/users")
async def invite_member(
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    email: Annotated[str, Form(max_length=320)],
    display_name: Annotated[str, Form(max_length=100)],
    role: Annotated[Role, Form()] = Role.VIEWER,
) -> Response:
    """Add a member and email the invitation (as `POST /api/tenant/users` without a
    password): step-up and audit included."""
    admin = console_admin(subject)
    form = {"email": email, "display_name": display_name, "role": role.value}
    stepped = await step_up(request, state, session, meta, admin, "/admin/users/new")
    if stepped is not None:
        return stepped
    try:
        address = str(_EMAIL.validate_python(email.strip()))
        if not display_name.strip():
            raise ValueError
    except (ValidationError, ValueError):
        error = "Enter a valid email address and a name."
        context = {"form": form, "roles": ROLES, "error": error}
        return page(request, "admin/new_user.html", context, 422)
    try:
        tenants.check_role_change(admin.role, admin.is_platform_admin, role)
        tenant = await tenants.require_tenant(session, admin.tenant_id)
        user = await accounts.create_account(
            state, session, tenant=tenant, email=address, display_name=display_name.strip(),
            role=role, password=None,
        )  # fmt: skip
        await AuditLog(session, meta, admin.user_id).record(
            AuditAction.TENANT_USER_CREATE,
            tenant_id=tenant.id,
            target_type="user",
            target_id=user.id,
            details={"role": role.value},
        )
        await invitations.send_invitation(
            state, session, meta, actor=admin, tenant=tenant, user=user
        )
    except BigfootError as exc:
        await session.rollback()
        context = {"form": form, "roles": ROLES, "error": message_of(exc)}
        return page(request, "admin/new_user.html", context, exc.status_code)
    return redirect(request, f"/admin/users/{user.id}?done=invited")


_NOTICES = {
    "invited": "Invitation sent.",
    "role": "Role changed.",
    "enabled": "Member enabled.",
    "disabled": "Member disabled; their sessions were ended.",
    "mfa": "Second factors removed.",
    "sessions": "Sessions ended.",
}


@router.get("/users/{user_id}")
async def member(
    request: Request,
    user_id: uuid.UUID,
    subject: BrowserSubject,
    session: ReadSession,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    admin = console_admin(subject)
    user, open_sessions = await sessions.member_sessions(session, admin, user_id)
    factors = await mfa_repo.count_factors(session, user.tenant_id, user.id)
    context = {
        "member": user,
        "sessions": open_sessions,
        "factors": factors,
        "roles": ROLES,
        "pending": user.password_hash is None,
        "notice": _NOTICES.get(done or ""),
        "is_self": user.id == admin.user_id,
    }
    return page(request, "admin/user.html", context)
