"""What a tenant admin does to one member from the member's page: change the role, disable or
enable, reset the second factors, resend the invitation, end sessions. The services of the API
(`identity.members`, `mfa.recovery`, `identity.invitations`, `identity.sessions`), its step-up
(`RecentMfa`) where the API asks for it, and a confirmation page before anything destructive."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Form, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from bigfootlive.authz.roles import Permission, Role
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.deps import DbSession, Meta, State
from bigfootlive.errors import BigfootError
from bigfootlive.identity import invitations, members, sessions
from bigfootlive.identity import repository as identity_repo
from bigfootlive.mfa import recovery
from bigfootlive.tenants import service as tenants
from bigfootlive.web.admin.common import admin_router, confirm, message_of, step_up
from bigfootlive.web.guard import console_admin
from bigfootlive.web.render import error_page, redirect
from bigfootlive.web.session import BrowserSubject

router = admin_router()


async def _member_name(session: AsyncSession, admin: AuthSubject, user_id: uuid.UUID) -> str:
    user = await identity_repo.get_user(session, admin.tenant_id, user_id)
    if user is None:
        raise tenants.tenant_not_found()
    return f"{user.display_name} <{user.email}>"


def _failed(request: Request, exc: BigfootError) -> Response:
    return error_page(request, exc.status_code, exc.code, message_of(exc))


@router.post("/users/{user_id}/role")
async def change_role(
    request: Request,
    user_id: uuid.UUID,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    role: Annotated[Role, Form()],
) -> Response:
    admin = console_admin(subject)
    back = f"/admin/users/{user_id}"
    if (stepped := await step_up(request, state, session, meta, admin, back)) is not None:
        return stepped
    try:
        await members.update_member(state, session, meta, admin, user_id, role=role)
    except BigfootError as exc:
        await session.rollback()
        return _failed(request, exc)
    return redirect(request, f"{back}?done=role")


@router.post("/users/{user_id}/status")
async def change_status(
    request: Request,
    user_id: uuid.UUID,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    active: Annotated[bool, Form()],
    confirm_: Annotated[str, Form(alias="confirm", max_length=3)] = "",
) -> Response:
    admin = console_admin(subject)
    back = f"/admin/users/{user_id}"
    if not active and confirm_ != "yes":
        name = await _member_name(session, admin, user_id)
        question = f"Disable {name}? Their sessions end now and they cannot sign in."
        return confirm(
            request, action=f"{back}/status", question=question, fields={"active": "false"},
            back=back,
        )  # fmt: skip
    if (stepped := await step_up(request, state, session, meta, admin, back)) is not None:
        return stepped
    try:
        await members.update_member(state, session, meta, admin, user_id, is_active=active)
    except BigfootError as exc:
        await session.rollback()
        return _failed(request, exc)
    return redirect(request, f"{back}?done={'enabled' if active else 'disabled'}")


@router.post("/users/{user_id}/mfa-reset")
async def reset_mfa(
    request: Request,
    user_id: uuid.UUID,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    confirm_: Annotated[str, Form(alias="confirm", max_length=3)] = "",
) -> Response:
    admin = console_admin(subject, Permission.MFA_RESET)
    back = f"/admin/users/{user_id}"
    if confirm_ != "yes":
        name = await _member_name(session, admin, user_id)
        question = f"Remove every second factor and backup code of {name}?"
        return confirm(request, action=f"{back}/mfa-reset", question=question, fields={}, back=back)
    if (stepped := await step_up(request, state, session, meta, admin, back)) is not None:
        return stepped
    await recovery.admin_reset(state, session, meta, admin, user_id)
    return redirect(request, f"{back}?done=mfa")


@router.post("/users/{user_id}/invitation")
async def resend_invitation(
    request: Request,
    user_id: uuid.UUID,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> Response:
    admin = console_admin(subject)
    back = f"/admin/users/{user_id}"
    if (stepped := await step_up(request, state, session, meta, admin, back)) is not None:
        return stepped
    try:
        await invitations.resend(state, session, meta, admin, user_id)
    except BigfootError as exc:
        await session.rollback()
        return _failed(request, exc)
    return redirect(request, f"{back}?done=invited")


@router.post("/users/{user_id}/sessions/end")
async def end_sessions(
    request: Request,
    user_id: uuid.UUID,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    session_id: Annotated[str, Form(max_length=36)] = "",
    confirm_: Annotated[str, Form(alias="confirm", max_length=3)] = "",
) -> Response:
    """End one session of the member (`session_id`), or all of them (none given)."""
    admin = console_admin(subject)
    back = f"/admin/users/{user_id}"
    try:
        target = uuid.UUID(session_id) if session_id else None
    except ValueError:
        return error_page(request, 422, "invalid_session_id", "No such session")
    if confirm_ != "yes":
        name = await _member_name(session, admin, user_id)
        what = "this session" if target else "every session"
        question = f"End {what} of {name}? They will have to sign in again."
        return confirm(
            request, action=f"{back}/sessions/end", question=question,
            fields={"session_id": session_id}, back=back,
        )  # fmt: skip
    await sessions.end_member_session(state, session, meta, admin, user_id, target)
    return redirect(request, f"{back}?done=sessions")
