"""Typed authentication/authorization dependencies for route signatures.

@router.get("/things")
async def list_things(subject: Annotated[AuthSubject, Depends(require(Permission.X))]): ...
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select

from bigfootlive.authz.roles import Permission
from bigfootlive.authz.scoping import act_for_platform, act_for_tenant
from bigfootlive.authz.subject import AuthSubject, TenantInactive
from bigfootlive.deps import ReadSession, State
from bigfootlive.errors import Forbidden, Unauthorized
from bigfootlive.models import AuthSession, Tenant, User


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def authenticate(state: State, session: ReadSession, token: str) -> AuthSubject:
    # unscoped: the query is pinned to the token's own tenant (User.tenant_id == claims.tenant_id).
    claims = state.tokens.decode(token)
    # The signed token names the tenant: from here on this request touches only its rows
    # (row-level security on PostgreSQL), whatever a query forgets to say.
    act_for_tenant(claims.tenant_id)
    if await state.revoked.is_revoked(claims.session_id):
        raise Unauthorized("The session has ended", code="session_revoked")
    # One round trip for the user, the session's state and the tenant's slug (which /me and
    # most responses need) and status, instead of a query each.
    row = (
        await session.execute(
            select(
                User, AuthSession.revoked_at, AuthSession.expires_at, Tenant.slug, Tenant.is_active
            )
            .join(AuthSession, AuthSession.user_id == User.id)
            .join(Tenant, Tenant.id == User.tenant_id)
            .where(
                AuthSession.id == claims.session_id,
                User.id == claims.user_id,
                User.tenant_id == claims.tenant_id,
            )
        )
    ).one_or_none()
    if row is None:
        raise Unauthorized("The access token is not valid", code="invalid_token")
    user, revoked_at, expires_at, tenant_slug, tenant_active = row
    if revoked_at is not None or expires_at <= dt.datetime.now(dt.UTC):
        raise Unauthorized("The session has ended", code="session_revoked")
    if not user.is_active:
        raise Unauthorized("The account is disabled", code="account_disabled")
    if not tenant_active and not user.is_platform_admin:
        raise TenantInactive()
    return AuthSubject(user=user, claims=claims, tenant_slug=tenant_slug)


async def current_subject(request: Request, state: State, session: ReadSession) -> AuthSubject:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized()
    return await authenticate(state, session, token)


async def optional_subject(
    request: Request, state: State, session: ReadSession
) -> AuthSubject | None:
    token = bearer_token(request)
    return None if token is None else await authenticate(state, session, token)


CurrentSubject = Annotated[AuthSubject, Depends(current_subject)]
OptionalSubject = Annotated[AuthSubject | None, Depends(optional_subject)]


def require(permission: Permission) -> Callable[[AuthSubject], Awaitable[AuthSubject]]:
    async def dependency(subject: CurrentSubject) -> AuthSubject:
        if not subject.can(permission):
            raise Forbidden(code="insufficient_role", required=str(permission))
        return subject

    return dependency


async def _platform_admin(subject: CurrentSubject) -> AuthSubject:
    if not subject.is_platform_admin:
        raise Forbidden(code="platform_admin_required")
    act_for_platform("platform admin request")
    return subject


PlatformAdmin = Annotated[AuthSubject, Depends(_platform_admin)]
