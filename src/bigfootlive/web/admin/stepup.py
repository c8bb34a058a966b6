"""`POST /admin/step-up`: answers the step-up challenge of `common.step_up` (the code of the
authenticator app, a backup code, or the password for members without a factor) through
`mfa.verification.verify`, as `POST /api/auth/mfa/verify`; the browser's access token is
replaced by the fresh one and the admin goes back to the page of the action."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from starlette.responses import Response

from bigfootlive.deps import DbSession, Meta, State
from bigfootlive.errors import BigfootError
from bigfootlive.mfa import verification
from bigfootlive.mfa.schemas import StepUpOut
from bigfootlive.web.admin.common import STEP_UP_COOKIE, admin_router, message_of
from bigfootlive.web.endpoints import safe_next
from bigfootlive.web.guard import signed_in
from bigfootlive.web.render import page, redirect
from bigfootlive.web.session import SESSION_COOKIE, BrowserSubject, cookies_of

router = admin_router()


@router.post("/step-up")
async def answer_step_up(
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    method: Annotated[str, Form(pattern="^(totp|backup_code|password)$")],
    code: Annotated[str, Form(max_length=32)] = "",
    password: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=500)] = "/admin/users",
) -> Response:
    signed_in(subject)
    back = safe_next(next)
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
        context = {"next": back, "methods": [method], "error": message_of(exc)}
        return page(request, "admin/step_up.html", context, exc.status_code)
    jar = cookies_of(request)
    jar.clear(STEP_UP_COOKIE)
    if isinstance(result, StepUpOut):
        jar.set(SESSION_COOKIE, result.access_token, state.settings.refresh_token_ttl_seconds)
    return redirect(request, back)
