from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Receive, Scope

from bigfootlive.audit.filters import AuditFilter
from bigfootlive.authz.deps import CurrentSubject, require
from bigfootlive.authz.roles import Permission
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.composition import AppState
from bigfootlive.deps import DbSession, Meta, ReadSession, State, app_state, request_meta
from bigfootlive.direct_http import STACK, Answer, read_body
from bigfootlive.identity import accounts, invitations, recovery, registration, sessions, sign_in
from bigfootlive.identity.schemas import (
    Accepted,
    AuditOut,
    EmailVerifyIn,
    InvitationAcceptIn,
    LoginIn,
    PasswordChangeIn,
    PasswordForgotIn,
    PasswordResetIn,
    RefreshIn,
    RegisterIn,
    RegistrationStarted,
    SessionOut,
    SignInResult,
    TokenPair,
    UserOut,
)
from bigfootlive.kit import jsonparse
from bigfootlive.kit.fastjson import JsonBytes
from bigfootlive.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, page_of
from bigfootlive.kit.request import RequestMeta
from bigfootlive.mfa.deps import RecentMfa
from bigfootlive.observability.middleware import declared_too_large
from bigfootlive.routing import JsonRoute
from bigfootlive.tenants.endpoints import user_out
from bigfootlive.tenants.schemas import TenantUserOut

router = APIRouter(prefix="/api/auth", tags=["auth"], route_class=JsonRoute)
# What a tenant admin does to one member beyond role and status (`tenants.endpoints`).
tenant_router = APIRouter(prefix="/api/tenant/users", tags=["tenant"], route_class=JsonRoute)
UserManager = Annotated[AuthSubject, Depends(require(Permission.USERS_MANAGE))]


@router.post("/register", status_code=status.HTTP_202_ACCEPTED)
async def register(
    body: RegisterIn, state: State, session: DbSession, meta: Meta
) -> RegistrationStarted:
    """Emails a link that creates the account (then sign in); an address that already has an
    account gets the same answer, and its owner an email about the attempt."""
    await registration.register(
        state,
        session,
        meta,
        tenant_slug=body.tenant,
        email=str(body.email),
        password=body.password,
        display_name=body.display_name,
    )
    return RegistrationStarted()


@router.post("/login", response_model=SignInResult)
async def login(body: LoginIn, state: State, session: DbSession, meta: Meta) -> Response:
    """Served past the HTTP stack unless the body is refused or CORS applies (`DirectLogin`)."""
    return JsonBytes(await _signed_in(state, session, meta, body))


async def _signed_in(
    state: AppState, session: AsyncSession, meta: RequestMeta, body: LoginIn
) -> bytes:
    result = await sign_in.login(
        state, session, meta, tenant_slug=body.tenant, email=str(body.email), password=body.password
    )
    # One serialization pass: the result is already the validated model (`kit.fastjson`).
    return result.model_dump_json().encode()


LOGIN_PATH = "/api/auth/login"
_JSON = [(b"content-type", b"application/json")]


def _json_content(scope: Scope) -> bool:
    """Whether the body is said to be `application/json` (parameters aside); the stack takes
    the other types it parses as JSON (`+json`, none)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bytes(value).partition(b";")[0].strip().lower() == b"application/json"
    return False


class DirectLogin:
    """`POST /api/auth/login` answered past the HTTP stack (`direct_http.DirectHttp`): FastAPI's
    layers, dependency graph and body handling cost about as much CPU as the sign-in's own work
    besides the hash, and under a login storm that CPU comes out of the hashes' cores. The body
    is read and validated first (`LoginIn`, as `login`'s parameter); one the endpoint would
    refuse (not `application/json`, not JSON, invalid, over the limit, a client gone mid-body)
    takes the stack, which answers it as before (its 400/413/422 bodies). Then `login`'s work,
    in the unit of work `DbSession` gives it (`Database.transaction`: committed before the
    answer, rolled back on an error), its session made only if used: a password sign-in on
    PostgreSQL with its tenant cached needs none (`sign_in_pg`'s calls)."""

    __slots__ = ()

    async def prepare(self, scope: Scope, receive: Receive, max_bytes: int) -> tuple[Any, Receive]:
        if not _json_content(scope) or declared_too_large(scope, max_bytes):
            return STACK, receive
        body, receive = await read_body(receive, max_bytes)
        if not body:
            return STACK, receive
        try:
            return LoginIn.model_validate(jsonparse.loads(body)), receive
        except (jsonparse.MalformedJson, ValidationError):
            return STACK, receive

    async def answer(self, request: Request, prepared: LoginIn) -> Answer:
        state = app_state(request)
        async with state.db.transaction(on_demand=True) as session:
            body = await _signed_in(state, session, request_meta(request, state), prepared)
        return Answer(200, list(_JSON), body)


@router.post("/refresh")
async def refresh(body: RefreshIn, state: State, session: DbSession, meta: Meta) -> TokenPair:
    return await sessions.refresh(state, session, meta, refresh_token=body.refresh_token)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(subject: CurrentSubject, state: State, session: DbSession, meta: Meta) -> Response:
    await sessions.logout(state, session, meta, subject)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=UserOut)
async def me(subject: CurrentSubject) -> Response:
    # A function of the principal alone: rendered once per principal (`identity.principals`).
    body = subject.principal.rendered.get("me")
    if body is None:
        out = accounts.user_out(subject.user, subject.tenant_slug)
        body = subject.principal.rendered["me"] = out.model_dump_json().encode()
    return JsonBytes(body)


@router.get("/sessions")
async def list_sessions(subject: CurrentSubject, session: ReadSession) -> list[SessionOut]:
    rows = await sessions.list_sessions(session, subject)
    return [
        SessionOut(
            id=s.id,
            current=s.id == subject.session_id,
            user_agent=s.user_agent,
            ip=s.ip,
            amr=s.amr.split(),
            created_at=s.created_at,
            last_seen_at=s.last_seen_at,
            expires_at=s.expires_at,
        )
        for s in rows
    ]


@router.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def terminate_session(
    session_id: uuid.UUID, subject: CurrentSubject, state: State, session: DbSession, meta: Meta
) -> Response:
    await sessions.terminate_session(state, session, meta, subject, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/audit")
async def audit(
    subject: CurrentSubject,
    session: ReadSession,
    scope: Literal["self", "tenant"] = "self",
    action: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[uuid.UUID | None, Query()] = None,
    since: Annotated[dt.datetime | None, Query()] = None,
    until: Annotated[dt.datetime | None, Query()] = None,
    ip: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[AuditOut]:
    """Newest first. The filters are those of `GET /api/tenant/audit/export` (`since`
    inclusive, `until` exclusive, both with a time zone)."""
    filters = AuditFilter(actor_id=actor, action=action, since=since, until=until, ip=ip)
    rows = await accounts.list_audit(
        session, subject, scope=scope, filters=filters, cursor=cursor, limit=limit
    )
    items, next_cursor = page_of(rows, limit)
    return Page[AuditOut](
        items=[AuditOut.model_validate(r, from_attributes=True) for r in items],
        next_cursor=next_cursor,
    )


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(
    body: PasswordChangeIn, subject: CurrentSubject, state: State, session: DbSession, meta: Meta
) -> Response:
    await recovery.change_password(
        state,
        session,
        meta,
        subject,
        current_password=body.current_password,
        new_password=body.new_password,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/password/forgot", status_code=status.HTTP_202_ACCEPTED)
async def forgot_password(
    body: PasswordForgotIn, state: State, session: DbSession, meta: Meta
) -> Accepted:
    await recovery.request_password_reset(
        state, session, meta, tenant_slug=body.tenant, email=str(body.email)
    )
    return Accepted()


@router.post("/password/reset", status_code=status.HTTP_204_NO_CONTENT)
async def reset_password(
    body: PasswordResetIn, state: State, session: DbSession, meta: Meta
) -> Response:
    await recovery.reset_password(
        state, session, meta, token=body.token, new_password=body.new_password
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/invitation/accept")
async def accept_invitation(
    body: InvitationAcceptIn, state: State, session: DbSession, meta: Meta
) -> SignInResult:
    """Use an invitation's one-time link: choose the password (the tenant's policy), then sign
    in as `POST /api/auth/login` does (a token pair, or the MFA challenge the policy asks)."""
    user, tenant = await invitations.accept(
        state, session, meta, token=body.token, password=body.password
    )
    return await sign_in.login(
        state, session, meta, tenant_slug=tenant.slug, email=user.email, password=body.password
    )


@router.post("/email/verify", status_code=status.HTTP_204_NO_CONTENT)
async def verify_email(
    body: EmailVerifyIn, state: State, session: DbSession, meta: Meta
) -> Response:
    await registration.confirm_email(state, session, meta, token=body.token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/email/verify/resend", status_code=status.HTTP_202_ACCEPTED)
async def resend_verification(
    subject: CurrentSubject, state: State, session: DbSession, meta: Meta
) -> Accepted:
    await recovery.resend_verification(state, session, meta, subject)
    return Accepted()


# ---------------------------------------------------------------- a member (tenant admins)


@tenant_router.post("/{user_id}/invitation", status_code=status.HTTP_202_ACCEPTED)
async def resend_invitation(
    user_id: uuid.UUID,
    subject: UserManager,
    _: RecentMfa,
    state: State,
    session: DbSession,
    meta: Meta,
) -> TenantUserOut:
    """Email the member a new one-time link to choose a password (409 `invitation_accepted`
    once they have one). Earlier links stay valid until used or expired."""
    user = await invitations.resend(state, session, meta, subject, user_id)
    return user_out(user)


@tenant_router.get("/{user_id}/sessions")
async def member_sessions(
    user_id: uuid.UUID, subject: UserManager, session: ReadSession
) -> list[SessionOut]:
    """The member's open sessions, most recently used first."""
    _, rows = await sessions.member_sessions(session, subject, user_id)
    return [
        SessionOut(
            id=s.id,
            current=s.id == subject.session_id,
            user_agent=s.user_agent,
            ip=s.ip,
            amr=s.amr.split(),
            created_at=s.created_at,
            last_seen_at=s.last_seen_at,
            expires_at=s.expires_at,
        )
        for s in rows
    ]


@tenant_router.delete("/{user_id}/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def end_member_session(
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    subject: UserManager,
    state: State,
    session: DbSession,
    meta: Meta,
) -> Response:
    """End one of the member's sessions (its tokens are refused from the next request)."""
    await sessions.end_member_session(state, session, meta, subject, user_id, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@tenant_router.delete("/{user_id}/sessions", status_code=status.HTTP_204_NO_CONTENT)
async def end_member_sessions(
    user_id: uuid.UUID, subject: UserManager, state: State, session: DbSession, meta: Meta
) -> Response:
    """End every session of the member."""
    await sessions.end_member_session(state, session, meta, subject, user_id, None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
