"""What every page of the tenant admin console shares: its router settings, the step-up page for
actions the API guards with `RecentMfa`, and the confirmation page of destructive actions. The
sign-in and permission check that opens each page is `web.guard.console_admin`."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from bigfootlive.authz.subject import AuthSubject
from bigfootlive.composition import AppState
from bigfootlive.errors import BigfootError
from bigfootlive.kit.request import RequestMeta
from bigfootlive.mfa.policy import StepUpRequired, ensure_recent_mfa
from bigfootlive.routing import JsonRoute
from bigfootlive.web.render import page
from bigfootlive.web.security import check_csrf
from bigfootlive.web.session import cookies_of

STEP_UP_COOKIE = "bfl_step_up"


def admin_router() -> APIRouter:
    return APIRouter(
        prefix="/admin",
        tags=["web"],
        route_class=JsonRoute,
        include_in_schema=False,
        dependencies=[Depends(check_csrf)],
    )


def form_problems(exc: ValidationError) -> str:
    """The form's validation errors in words, each after the field it concerns ("url: must
    start with ldap:// or ldaps://"), not pydantic's ("config.ldap.url: String should match
    pattern '^ldaps?://'")."""
    problems = []
    for error in exc.errors():
        loc = [str(p) for p in error["loc"] if not isinstance(p, int)]
        field = loc[-1].replace("_", " ") if loc else "the form"
        message = str(error["msg"]).removeprefix("Value error, ")
        pattern = str((error.get("ctx") or {}).get("pattern", ""))
        if error["type"] == "string_pattern_mismatch" and (
            scheme := re.fullmatch(r"\^(\w+)s\?://", pattern)
        ):
            message = f"must start with {scheme[1]}:// or {scheme[1]}s://"
        problems.append(f"{field}: {message}")
    return "; ".join(problems)


def message_of(exc: BigfootError) -> str:
    problems = exc.details.get("problems")
    if isinstance(problems, list) and problems:
        return f"{exc.message}: " + "; ".join(str(p) for p in problems)
    return exc.message


async def step_up(
    request: Request,
    state: AppState,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    back: str,
) -> Response | None:
    """None when the admin proved a factor (or signed in) recently enough for a sensitive
    action (`mfa.policy.ensure_recent_mfa`, as the API's `RecentMfa`); otherwise the page
    that asks for it, which returns to `back` (where the admin repeats the action)."""
    try:
        await ensure_recent_mfa(state, session, meta, subject)
    except StepUpRequired as exc:
        challenge: dict[str, Any] = exc.details["challenge"]
        cookies_of(request).set(
            STEP_UP_COOKIE, challenge["challenge_token"], int(challenge["expires_in"])
        )
        methods = [m for m in challenge["methods"] if m in ("totp", "backup_code", "password")]
        return page(request, "admin/step_up.html", {"next": back, "methods": methods}, 401)
    return None


def confirm(
    request: Request, *, action: str, question: str, fields: dict[str, str], back: str
) -> Response:
    """The confirmation page of a destructive action: the same form again, with `confirm`."""
    context = {"action": action, "question": question, "fields": fields, "back": back}
    return page(request, "admin/confirm.html", context)
