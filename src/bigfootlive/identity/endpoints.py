from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from bigfootlive.audit.filters import AuditFilter
from bigfootlive.authz.deps import CurrentSubject
from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.identity import accounts, recovery, registration, sessions, sign_in
from bigfootlive.identity.schemas import (
    Accepted,
    AuditOut,
    EmailVerifyIn,
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
from bigfootlive.kit.fastjson import JsonBytes
from bigfootlive.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, page_of
from bigfootlive.routing import JsonRoute

router = APIRouter(prefix="/api/auth", tags=["auth"], route_class=JsonRoute)


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


@router.post("/login")
async def login(body: LoginIn, state: State, session: DbSession, meta: Meta) -> SignInResult:
    return await sign_in.login(
        state, session, meta, tenant_slug=body.tenant, email=str(body.email), password=body.password
    )


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
