"""Step-up for the consoles' sensitive actions, as the API asks for it (`mfa.policy`).

A page handler calls `step_up_needed` before acting: when the session's verification is too
old it answers the step-up page (401) instead, holding the challenge in a cookie; the page
posts a code (or the password, for a user without a factor) to `/stepup`, which refreshes the
session's access token (`mfa.verification.verify`, audited) and sends the browser back to
the confirmation it came from. The page asks for the authenticator app's code when the account
has a TOTP factor, else for the password; other factors (passkeys, email or SMS codes) are not
offered here yet."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from bigfootlive.authz.subject import AuthSubject
from bigfootlive.deps import DbSession, Meta, State
from bigfootlive.errors import BigfootError
from bigfootlive.identity.schemas import TokenPair
from bigfootlive.kit.request import RequestMeta
from bigfootlive.mfa import verification
from bigfootlive.mfa.policy import StepUpRequired, ensure_recent_mfa
from bigfootlive.routing import JsonRoute
from bigfootlive.state import Infrastructure
from bigfootlive.web.render import page, redirect
from bigfootlive.web.security import check_csrf
from bigfootlive.web.session import SESSION_COOKIE, cookies_of

STEP_UP_COOKIE = "bfl_step_up"

router = APIRouter(
    tags=["web"], route_class=JsonRoute, include_in_schema=False, dependencies=[Depends(check_csrf)]
)


def _safe(value: str) -> str:
    if not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    return value


async def step_up_needed(
    request: Request,
    state: Infrastructure,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    back: str,
) -> Response | None:
    """None when the session verified recently enough; else the step-up page, coming back to
    `back` (a page of ours that shows the confirmation again)."""
    try:
        await ensure_recent_mfa(state, session, meta, subject)
    except StepUpRequired as exc:
        challenge = exc.details.get("challenge") or {}
        lifetime = int(challenge.get("expires_in") or 300)
        cookies_of(request).set(STEP_UP_COOKIE, str(challenge.get("challenge_token", "")), lifetime)
        methods = challenge.get("methods") or ["password"]
        return page(request, "stepup.html", {"next": _safe(back), "methods": methods}, 401)
    return None


@router.post("/stepup")
async def step_up(
    request: Request,
    state: State,
    session: DbSession,
    meta: Meta,
    method: Annotated[str, Form(pattern="^(totp|backup_code|password)$")],
    code: Annotated[str, Form(max_length=32)] = "",
    password: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    back = _safe(next)
    token = request.cookies.get(STEP_UP_COOKIE)
    if not token:
        return redirect(request, back)
    try:
        result = await verification.verify(
            state, session, meta, token=token, method=method, factor_id=None,
            code=code.strip().replace(" ", "") or None, credential=None,
            password=password or None,
        )  # fmt: skip
    except BigfootError as exc:
        await session.rollback()
        context = {"next": back, "methods": [method], "error": exc.message}
        return page(request, "stepup.html", context, exc.status_code)
    jar = cookies_of(request)
    if not isinstance(result, TokenPair):
        jar.set(SESSION_COOKIE, result.access_token, state.settings.refresh_token_ttl_seconds)
    jar.clear(STEP_UP_COOKIE)
    return redirect(request, back)
