"""Typed authentication/authorization dependencies for route signatures.

@router.get("/things")
async def list_things(subject: Annotated[AuthSubject, Depends(require(Permission.X))]): ...
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from bigfootlive.authz.roles import Permission
from bigfootlive.authz.scoping import act_for_platform, act_for_tenant
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.deps import State
from bigfootlive.errors import Forbidden, Unauthorized


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def authenticate(state: State, token: str) -> AuthSubject:
    """The subject of a bearer token: the token verified (`identity.tokens`), the session not
    revoked, the user active, the tenant active; role and status as of the last change
    (`identity.principals`: cached in the process, checked against the cache on each call)."""
    claims = state.tokens.decode(token)
    # The signed token names the tenant: from here on this request touches only its rows
    # (row-level security on PostgreSQL), whatever a query forgets to say.
    act_for_tenant(claims.tenant_id)
    return await state.principals.subject(claims)


async def authenticate_and(
    state: State, token: str | None, key: Callable[[uuid.UUID], str]
) -> tuple[AuthSubject, bytes | None]:
    """`authenticate`, and the cache's value at `key(token's tenant)` read in the same round
    trip, before anything the request reads next (e.g. the member list's stamp)."""
    if token is None:
        raise Unauthorized()
    claims = state.tokens.decode(token)
    act_for_tenant(claims.tenant_id)
    return await state.principals.subject_and(claims, key(claims.tenant_id))


async def current_subject(request: Request, state: State) -> AuthSubject:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized()
    return await authenticate(state, token)


async def optional_subject(request: Request, state: State) -> AuthSubject | None:
    token = bearer_token(request)
    return None if token is None else await authenticate(state, token)


CurrentSubject = Annotated[AuthSubject, Depends(current_subject)]
OptionalSubject = Annotated[AuthSubject | None, Depends(optional_subject)]


def permitted(subject: AuthSubject, permission: Permission) -> AuthSubject:
    """`subject` if it has `permission`, else 403 `insufficient_role` (what `require` checks)."""
    if not subject.can(permission):
        raise Forbidden(code="insufficient_role", required=str(permission))
    return subject


def require(permission: Permission) -> Callable[[AuthSubject], Awaitable[AuthSubject]]:
    async def dependency(subject: CurrentSubject) -> AuthSubject:
        return permitted(subject, permission)

    return dependency


async def _platform_admin(subject: CurrentSubject) -> AuthSubject:
    if not subject.is_platform_admin:
        raise Forbidden(code="platform_admin_required")
    act_for_platform("platform admin request")
    return subject


PlatformAdmin = Annotated[AuthSubject, Depends(_platform_admin)]
