from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, ValidationError

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.deps import (
    PlatformAdmin,
    authenticate_and,
    bearer_token,
    permitted,
    require,
)
from bigfootlive.authz.roles import Permission, Role
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.composition import AppState
from bigfootlive.deps import DbSession, Meta, ReadSession, State, app_state
from bigfootlive.errors import NotFound
from bigfootlive.identity import accounts, invitations, members
from bigfootlive.identity.member_pages import Shape, members_stamp_key
from bigfootlive.kit import fastjson
from bigfootlive.kit.fastjson import JsonBytes
from bigfootlive.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, encode_cursor
from bigfootlive.mfa.deps import RecentMfa
from bigfootlive.mfa.policy import ensure_recent_mfa
from bigfootlive.models import User
from bigfootlive.routing import JsonRoute
from bigfootlive.tenants import audit_export, platform, service
from bigfootlive.tenants.repository import USER_PAGE_FIELDS
from bigfootlive.tenants.schemas import (
    PlatformTenantCreate,
    PlatformTenantOut,
    PlatformTenantUpdate,
    TenantOut,
    TenantStatusOut,
    TenantUpdate,
    TenantUserCreate,
    TenantUserOut,
    TenantUserUpdate,
)

router = APIRouter(prefix="/api/tenant", tags=["tenant"], route_class=JsonRoute)
platform_router = APIRouter(
    prefix="/api/platform/tenants", tags=["platform"], route_class=JsonRoute
)

TenantReader = Annotated[AuthSubject, Depends(require(Permission.TENANT_READ))]
TenantAdmin = Annotated[AuthSubject, Depends(require(Permission.TENANT_UPDATE))]
UserLister = Annotated[AuthSubject, Depends(require(Permission.USERS_LIST))]
UserManager = Annotated[AuthSubject, Depends(require(Permission.USERS_MANAGE))]
AuditReader = Annotated[AuthSubject, Depends(require(Permission.AUDIT_READ_TENANT))]


def user_out(user: User) -> TenantUserOut:
    return TenantUserOut(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=Role(user.role),
        is_active=user.is_active,
        email_verified=user.email_verified_at is not None,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


async def _tenant_out(session: DbSession | ReadSession, tenant_id: uuid.UUID) -> TenantOut:
    tenant = await service.require_tenant(session, tenant_id)
    return TenantOut(
        id=tenant.id,
        slug=tenant.slug,
        name=tenant.name,
        settings=service.settings_of(tenant),
        email_domains=await service.email_domains(session, tenant.id),
        created_at=tenant.created_at,
    )


@router.get("/info")
async def get_info(subject: TenantReader, session: ReadSession) -> TenantOut:
    return await _tenant_out(session, subject.tenant_id)


@router.put("/info")
async def update_info(
    body: TenantUpdate, subject: TenantAdmin, state: State, session: DbSession, meta: Meta
) -> TenantOut:
    if body.settings is not None and body.settings.mfa is not None:
        # Weakening MFA would otherwise be one stolen session away.
        await ensure_recent_mfa(state, session, meta, subject)
    tenant = await service.require_tenant(session, subject.tenant_id)
    await service.update_tenant_audited(session, meta, subject.user_id, tenant, body)
    return await _tenant_out(session, tenant.id)


class _MemberListQuery(BaseModel):
    """`GET /api/tenant/users`'s query parameters: documented by `list_users`, read by
    `_member_list_query`."""

    q: Annotated[str | None, Field(max_length=100)] = None
    cursor: Annotated[str | None, Field(max_length=200)] = None
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    role: Role | None = None
    active: bool | None = None


async def list_users(
    subject: UserLister, state: State, query: Annotated[_MemberListQuery, Query()]
) -> Response:
    """Members, newest first: `q` searches name and email; `role` and `active` filter.

    Documents the route; `MemberListRoute` answers it the same way without FastAPI's generic
    handler (a hot read: the dependency graph and five parameters validated one by one cost
    more than the query)."""
    return await _member_page(state, subject, query)


_FIRST_PAGE = _MemberListQuery()


def _member_list_query(request: Request) -> _MemberListQuery:
    """The query parameters as FastAPI reads them (the last value of a repeated one; others
    ignored), and its 422 `validation_error` with `loc` ["query", name] when one is invalid."""
    params = request.query_params
    if not params:
        return _FIRST_PAGE
    given = {name: params[name] for name in _MemberListQuery.model_fields if name in params}
    try:
        return _MemberListQuery.model_validate(given)
    except ValidationError as exc:
        raise RequestValidationError(
            [
                {
                    "type": e["type"],
                    "loc": ("query", *e["loc"]),
                    "msg": e["msg"],
                    "input": e["input"],
                }
                for e in exc.errors(include_url=False)
            ]
        ) from None


async def _member_page(
    state: AppState, subject: AuthSubject, query: _MemberListQuery, stamp: bytes | None = None
) -> Response:
    # The same JSON as `Page[TenantUserOut]`, which documents it, without building the model:
    # plain rows in one serialization pass. A first page (no search, no cursor) is kept as its
    # bytes under the tenant's members stamp, read with the session's check before the rows
    # (`identity.member_pages`); `stamp` is that value.
    pages = state.principals.member_pages
    shape = None if query.q or query.cursor else _shape(query)
    if shape is not None:
        body = pages.get(subject.tenant_id, shape, stamp)
        if body is not None:
            return JsonBytes(body)
    rows = await service.users_page(
        state.db, subject.tenant_id, query=query.q, cursor=query.cursor, limit=query.limit,
        role=query.role, active=query.active,
    )  # fmt: skip
    body = render_page(rows, query.limit)
    if shape is not None:
        await pages.keep(subject.tenant_id, shape, stamp, body)
    return JsonBytes(body)


def _shape(query: _MemberListQuery) -> Shape:
    return (query.limit, None if query.role is None else query.role.value, query.active)


def render_page(rows: Sequence[Sequence[Any]], limit: int) -> bytes:
    """`service.users_page`'s rows as the response's body (`Page[TenantUserOut]`'s JSON)."""
    items = [dict(zip(USER_PAGE_FIELDS, row, strict=True)) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit and items:
        next_cursor = encode_cursor(items[-1]["created_at"], items[-1]["id"])
    return fastjson.dumps({"items": items, "next_cursor": next_cursor})


async def answer_member_list(request: Request) -> Response:
    """`GET /api/tenant/users` as FastAPI would answer it (the token and the permission first,
    as it solves the dependencies before it validates the parameters), in one function. The
    session's check also reads the tenant's members stamp (one round trip for both)."""
    state = app_state(request)
    subject, stamp = await authenticate_and(state, bearer_token(request), members_stamp_key)
    permitted(subject, Permission.USERS_LIST)
    return await _member_page(state, subject, _member_list_query(request), stamp)


class MemberListRoute(JsonRoute):
    """Declared like any endpoint (its signature documents it); answered by
    `answer_member_list`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return answer_member_list


router.add_api_route(
    "/users",
    list_users,
    methods=["GET"],
    response_model=Page[TenantUserOut],
    route_class_override=MemberListRoute,
)


@router.post("/users", status_code=status.HTTP_201_CREATED)
async def create_user(
    body: TenantUserCreate,
    subject: UserManager,
    _: RecentMfa,
    state: State,
    session: DbSession,
    meta: Meta,
) -> TenantUserOut:
    service.check_role_change(subject.role, subject.is_platform_admin, body.role)
    tenant = await service.require_tenant(session, subject.tenant_id)
    user = await accounts.create_account(
        state,
        session,
        tenant=tenant,
        email=body.email,
        display_name=body.display_name,
        role=body.role,
        password=body.password,
    )
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.TENANT_USER_CREATE,
        tenant_id=tenant.id,
        target_type="user",
        target_id=user.id,
        details={"role": body.role.value},
    )
    if body.password is None:
        # An invitation: the new member chooses a password through the emailed one-time link.
        await invitations.send_invitation(
            state, session, meta, actor=subject, tenant=tenant, user=user
        )
    return user_out(user)


@router.put("/users/{user_id}")
async def update_user(
    user_id: uuid.UUID,
    body: TenantUserUpdate,
    subject: UserManager,
    _: RecentMfa,
    state: State,
    session: DbSession,
    meta: Meta,
) -> TenantUserOut:
    user = await members.update_member(
        state, session, meta, subject, user_id, role=body.role, is_active=body.is_active
    )
    return user_out(user)


@router.get(
    "/audit/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}},
)
async def export_audit(
    subject: AuditReader,
    state: State,
    session: DbSession,
    meta: Meta,
    format: Annotated[audit_export.ExportFormat, Query()] = "csv",
    actor: Annotated[uuid.UUID | None, Query()] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[dt.datetime | None, Query()] = None,
    until: Annotated[dt.datetime | None, Query()] = None,
    ip: Annotated[str | None, Query(max_length=64)] = None,
) -> StreamingResponse:
    """The tenant's audit records matching the filters (oldest first) as CSV or JSON Lines,
    streamed: the server holds one chunk of records at a time, whatever the file's size."""
    flt = audit_export.AuditFilter(actor_id=actor, action=action, since=since, until=until, ip=ip)
    filename = await audit_export.start_export(
        session, meta, actor_id=subject.user_id, tenant_id=subject.tenant_id, flt=flt,
        fmt=format, now=state.clock(),
    )  # fmt: skip
    return StreamingResponse(
        audit_export.export(state.db, subject.tenant_id, flt, format),
        media_type=audit_export.MEDIA_TYPES[format],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


async def _set_tenant_active(
    tenant_id: uuid.UUID,
    active: bool,
    subject: AuthSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> TenantStatusOut:
    tenant = await service.get_tenant(session, tenant_id)
    if tenant is None:
        raise NotFound("No such tenant", code="tenant_not_found")
    changed = await service.set_active(
        state, session, meta, tenant, active, actor_id=subject.user_id
    )
    return TenantStatusOut(
        id=tenant.id, slug=tenant.slug, name=tenant.name, is_active=active, changed=changed
    )


@platform_router.post("/{tenant_id}/deactivate")
async def deactivate_tenant(
    tenant_id: uuid.UUID,
    subject: PlatformAdmin,
    _: RecentMfa,
    state: State,
    session: DbSession,
    meta: Meta,
) -> TenantStatusOut:
    """Refuse the tenant's members (every request, refresh and sign-in), sessions and API keys
    until it is activated again (the same service as `bigfootlive tenant deactivate`; audited)."""
    return await _set_tenant_active(tenant_id, False, subject, state, session, meta)


@platform_router.post("/{tenant_id}/activate")
async def activate_tenant(
    tenant_id: uuid.UUID,
    subject: PlatformAdmin,
    _: RecentMfa,
    state: State,
    session: DbSession,
    meta: Meta,
) -> TenantStatusOut:
    """Let a deactivated tenant's members, sessions and API keys in again (audited)."""
    return await _set_tenant_active(tenant_id, True, subject, state, session, meta)


@platform_router.get("")
async def list_tenants(
    _: PlatformAdmin,
    session: ReadSession,
    q: Annotated[str | None, Query(max_length=100)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[PlatformTenantOut]:
    """Every tenant, newest first, with its member count; `q` matches the slug or the name."""
    items, next_cursor = await platform.list_tenants(
        session, query=(q or "").strip() or None, cursor=cursor, limit=limit
    )
    return Page[PlatformTenantOut](items=items, next_cursor=next_cursor)


@platform_router.post("", status_code=status.HTTP_201_CREATED)
async def create_tenant(
    body: PlatformTenantCreate, subject: PlatformAdmin, session: DbSession, meta: Meta
) -> PlatformTenantOut:
    """A new tenant (the same service as `bigfootlive tenant create`; audited)."""
    return await platform.create(session, meta, subject.user_id, body)


@platform_router.get("/{tenant_id}")
async def get_tenant(
    tenant_id: uuid.UUID, _: PlatformAdmin, session: ReadSession
) -> PlatformTenantOut:
    return await platform.get(session, tenant_id)


@platform_router.patch("/{tenant_id}")
async def rename_tenant(
    tenant_id: uuid.UUID,
    body: PlatformTenantUpdate,
    subject: PlatformAdmin,
    session: DbSession,
    meta: Meta,
) -> PlatformTenantOut:
    return await platform.rename(session, meta, subject.user_id, tenant_id, body)
