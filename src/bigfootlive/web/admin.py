"""The tenant admin console (issue 16), first page: the members list with search and
pagination, and a member's page. Tenant admins only (the API's `users:manage`); the same services
as `/api/tenant/users`; another tenant's member answers 404, like the API."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from bigfootlive.authz.roles import Permission
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.deps import ReadSession, State
from bigfootlive.errors import Forbidden
from bigfootlive.identity import repository as identity_repo
from bigfootlive.kit.pagination import page_of
from bigfootlive.routing import JsonRoute
from bigfootlive.tenants import service as tenants
from bigfootlive.web.render import page, redirect
from bigfootlive.web.security import check_csrf
from bigfootlive.web.session import BrowserSubject

PAGE_SIZE = 25

router = APIRouter(
    prefix="/admin",
    tags=["web"],
    route_class=JsonRoute,
    include_in_schema=False,
    dependencies=[Depends(check_csrf)],
)


def _admin(subject: AuthSubject) -> AuthSubject:
    if not subject.can(Permission.USERS_MANAGE):
        raise Forbidden(
            "The admin console is for the organisation's admins", code="insufficient_role"
        )
    return subject


def _sign_in(request: Request) -> Response:
    return redirect(request, f"/signin?next={quote(request.url.path)}")


@router.get("/users")
async def users(
    request: Request,
    subject: BrowserSubject,
    state: State,
    q: Annotated[str | None, Query(max_length=100)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    if subject is None:
        return _sign_in(request)
    admin = _admin(subject)
    query = (q or "").strip() or None
    async with state.db.reads() as conn:
        rows = await tenants.list_users(
            conn, admin.tenant_id, query=query, cursor=cursor, limit=PAGE_SIZE
        )
    items, next_cursor = page_of(rows, PAGE_SIZE)
    next_url = None
    if next_cursor is not None:
        params = {"cursor": next_cursor, **({"q": query} if query else {})}
        next_url = f"/admin/users?{urlencode(params)}"
    return page(
        request,
        "admin/users.html",
        {"members": items, "q": query or "", "next_url": next_url, "paged": cursor is not None},
    )


@router.get("/users/{user_id}")
async def member(
    request: Request, user_id: uuid.UUID, subject: BrowserSubject, session: ReadSession
) -> Response:
    if subject is None:
        return _sign_in(request)
    admin = _admin(subject)
    user = await identity_repo.get_user(session, admin.tenant_id, user_id)
    if user is None:
        raise tenants.tenant_not_found()
    return page(request, "admin/user.html", {"member": user})
