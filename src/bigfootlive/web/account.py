"""Account pages: profile, password change, active sessions (revoke), notification preferences.

The same services as the JSON API (`users.service.update_profile` as `PUT /api/users/{id}`,
`identity.recovery.change_password` as `POST /api/auth/password`, `identity.sessions` as
`/api/auth/sessions`, `notifications.service` as `/api/notifications/preferences`); the second
factors and step-up are in `web.account_mfa` (a passkey at the sign-in challenge in
`web.signin_passkey`), included here so the app registers one router."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from bigfootlive.authz.subject import AuthSubject
from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.errors import BigfootError
from bigfootlive.identity import recovery, sessions
from bigfootlive.notifications import service as notifications
from bigfootlive.notifications.schemas import PreferencesUpdate
from bigfootlive.routing import JsonRoute
from bigfootlive.users import service as users
from bigfootlive.users.schemas import ProfileUpdate
from bigfootlive.web import session as web_session
from bigfootlive.web.account_mfa import router as mfa_router
from bigfootlive.web.guard import signed_in
from bigfootlive.web.outcome import describe
from bigfootlive.web.render import page, redirect
from bigfootlive.web.security import check_csrf
from bigfootlive.web.session import BrowserSubject
from bigfootlive.web.signin_passkey import router as signin_passkey_router

router = APIRouter(
    tags=["web"],
    route_class=JsonRoute,
    include_in_schema=False,
    dependencies=[Depends(check_csrf)],
)

Password = Annotated[str, Form(max_length=128)]


# ---------------------------------------------------------------- profile


async def _profile_page(
    request: Request,
    session: AsyncSession,
    me: AuthSubject,
    status: int = 200,
    **extra: Any,
) -> Response:
    profile = await users.profile(session, me, me.user_id)
    context = {"section": "profile", "profile": profile, "email": me.user.email, **extra}
    return page(request, "account/profile.html", context, status)


@router.get("/account")
async def profile_page(request: Request, subject: BrowserSubject, session: ReadSession) -> Response:
    subject = signed_in(subject)
    return await _profile_page(request, session, subject, saved=request.query_params.get("saved"))


@router.post("/account/profile")
async def update_profile(
    request: Request,
    subject: BrowserSubject,
    session: DbSession,
    meta: Meta,
    display_name: Annotated[str, Form(max_length=200)],
    bio: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    subject = signed_in(subject)
    try:
        patch = ProfileUpdate(display_name=display_name.strip(), bio=bio.strip())
        await users.update_profile(session, meta, subject, subject.user_id, patch)
    except (ValidationError, BigfootError) as exc:
        await session.rollback()
        error, status = (
            ("Give a display name (at most 100 characters) and a bio of at most 1000.", 422)
            if isinstance(exc, ValidationError)
            else (exc.message, exc.status_code)
        )
        form = {"display_name": display_name, "bio": bio}
        return await _profile_page(request, session, subject, status, error=error, form=form)
    return redirect(request, "/account?saved=1")


# ---------------------------------------------------------------- password


@router.get("/account/password")
async def password_page(request: Request, subject: BrowserSubject) -> Response:
    subject = signed_in(subject)
    done = request.query_params.get("changed")
    return page(request, "account/password.html", {"section": "password", "changed": done})


@router.post("/account/password")
async def change_password(
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    current_password: Password,
    new_password: Password,
    confirm_password: Password,
) -> Response:
    subject = signed_in(subject)
    if new_password != confirm_password:
        error = "The new password and its confirmation differ."
        return page(request, "account/password.html", {"section": "password", "error": error}, 422)
    try:
        await recovery.change_password(
            state, session, meta, subject,
            current_password=current_password, new_password=new_password,
        )  # fmt: skip
    except BigfootError as exc:
        await session.rollback()
        context = {"section": "password", "error": describe(exc)}
        return page(request, "account/password.html", context, exc.status_code)
    return redirect(request, "/account/password?changed=1")


# ---------------------------------------------------------------- sessions


@router.get("/account/sessions")
async def sessions_page(
    request: Request, subject: BrowserSubject, session: ReadSession
) -> Response:
    subject = signed_in(subject)
    rows = await sessions.list_sessions(session, subject)
    listed = sorted(rows, key=lambda s: (s.id != subject.session_id, -s.last_seen_at.timestamp()))
    context = {
        "section": "sessions",
        "sessions": listed,
        "current_id": subject.session_id,
        "revoked": request.query_params.get("revoked"),
    }
    return page(request, "account/sessions.html", context)


@router.post("/account/sessions/{session_id}/revoke")
async def revoke_session(
    session_id: uuid.UUID,
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> Response:
    """Ends one of the account's sessions (`DELETE /api/auth/sessions/{id}`); that browser is
    signed out at its next request. Ending this browser's own session signs it out now."""
    subject = signed_in(subject)
    await sessions.terminate_session(state, session, meta, subject, session_id)
    if session_id == subject.session_id:
        web_session.end(request)
        return redirect(request, "/signin")
    return redirect(request, "/account/sessions?revoked=1")


# ---------------------------------------------------------------- notifications


@router.get("/account/notifications")
async def notifications_page(
    request: Request, subject: BrowserSubject, session: ReadSession
) -> Response:
    subject = signed_in(subject)
    context = {
        "section": "notifications",
        "prefs": await notifications.preferences(session, subject),
        "saved": request.query_params.get("saved"),
    }
    return page(request, "account/notifications.html", context)


@router.post("/account/notifications")
async def update_notifications(
    request: Request,
    subject: BrowserSubject,
    session: DbSession,
    email_event_live: Annotated[bool, Form()] = False,
    realtime_event_live: Annotated[bool, Form()] = False,
) -> Response:
    """Unchecked boxes are not sent by the browser: absent means off."""
    subject = signed_in(subject)
    body = PreferencesUpdate(
        email_event_live=email_event_live, realtime_event_live=realtime_event_live
    )
    await notifications.update_preferences(session, subject, body)
    return redirect(request, "/account/notifications?saved=1")


router.include_router(mfa_router)
router.include_router(signin_passkey_router)
