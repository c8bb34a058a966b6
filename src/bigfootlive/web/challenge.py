"""Pages: the sign-in's MFA challenge answered with a code sent by SMS or email, or with a
backup code (the authenticator app's code is on `/signin/mfa`, in endpoints.py).

`/signin/mfa/other` lists what the challenge accepts (`mfa.verification.challenge_factors`);
sending a code is `mfa.verification.prepare_challenge` and checking it `verification.verify`,
as `POST /api/auth/mfa/challenge` and `/verify`: attempts, lockouts and their waits are the
API's, shown on the page."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import Response

from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.errors import BigfootError
from bigfootlive.mfa import verification
from bigfootlive.routing import JsonRoute
from bigfootlive.web.outcome import describe, retry_headers, safe_next, signed_in, to_signin
from bigfootlive.web.render import page, redirect
from bigfootlive.web.security import check_csrf
from bigfootlive.web.session import CHALLENGE_COOKIE, cookies_of

router = APIRouter(
    tags=["web"], route_class=JsonRoute, include_in_schema=False, dependencies=[Depends(check_csrf)]
)

SENT_CODES = ("sms", "email")
GONE = ("invalid_mfa_challenge", "mfa_challenge_locked", "mfa_enrollment_required")
Next = Annotated[str, Form(max_length=200)]
Method = Annotated[str, Form(pattern="^(sms|email|backup_code)$")]


def _refused(
    request: Request, template: str, context: dict[str, Any], exc: BigfootError
) -> Response:
    if exc.code in GONE:  # the challenge is over: sign in again
        cookies_of(request).clear(CHALLENGE_COOKIE)
        context = {**context, "restart": True}
    response = page(request, template, {**context, "error": describe(exc)}, exc.status_code)
    response.headers.update(retry_headers(exc))
    return response


@router.get("/signin/mfa/other")
async def other_ways(
    request: Request, state: State, session: ReadSession, next: str = "/"
) -> Response:
    next_url = safe_next(next)
    token = request.cookies.get(CHALLENGE_COOKIE)
    if not token:
        return to_signin(request, next_url)
    context: dict[str, Any] = {"next": next_url}
    try:
        factors = await verification.challenge_factors(state, session, token=token)
    except BigfootError as exc:
        return _refused(request, "mfa_other.html", {**context, "factors": []}, exc)
    sent = [{"id": f.id, "type": f.type, "name": f.name} for f in factors if f.type in SENT_CODES]
    has_app = any(f.type == "totp" for f in factors)
    return page(request, "mfa_other.html", {**context, "factors": sent, "has_app": has_app})


@router.post("/signin/mfa/send")
async def send_code(
    request: Request,
    state: State,
    session: DbSession,
    meta: Meta,
    factor_id: Annotated[uuid.UUID, Form()],
    next: Next = "/",
) -> Response:
    next_url = safe_next(next)
    token = request.cookies.get(CHALLENGE_COOKIE)
    if not token:
        return to_signin(request, next_url)
    context: dict[str, Any] = {"next": next_url, "factors": []}
    try:
        sent = await verification.prepare_challenge(
            state, session, meta, token=token, factor_id=factor_id
        )
    except BigfootError as exc:
        await session.rollback()
        return _refused(request, "mfa_other.html", context, exc)
    if sent.type not in SENT_CODES:  # a passkey or an app: nothing was sent
        return redirect(request, f"/signin/mfa?next={quote(next_url)}")
    return page(
        request,
        "mfa_code.html",
        {"next": next_url, "method": sent.type, "factor_id": sent.factor_id,
         "sent_to": sent.code_sent_to},
    )  # fmt: skip


@router.get("/signin/mfa/backup")
async def backup_form(request: Request, next: str = "/") -> Response:
    next_url = safe_next(next)
    if not request.cookies.get(CHALLENGE_COOKIE):
        return to_signin(request, next_url)
    return page(request, "mfa_code.html", {"next": next_url, "method": "backup_code"})


@router.post("/signin/mfa/code")
async def check_code(
    request: Request,
    state: State,
    session: DbSession,
    meta: Meta,
    method: Method,
    code: Annotated[str, Form(max_length=32)],
    factor_id: Annotated[str, Form(max_length=36)] = "",
    next: Next = "/",
) -> Response:
    next_url = safe_next(next)
    token = request.cookies.get(CHALLENGE_COOKIE)
    if not token:
        return to_signin(request, next_url)
    try:
        factor = uuid.UUID(factor_id) if factor_id else None
    except ValueError:
        factor = None
    context: dict[str, Any] = {"next": next_url, "method": method, "factor_id": factor}
    try:
        result = await verification.verify(
            state, session, meta, token=token, method=method, factor_id=factor,
            code=code.strip().replace(" ", ""), credential=None, password=None,
        )  # fmt: skip
    except BigfootError as exc:
        await session.rollback()
        return _refused(request, "mfa_code.html", context, exc)
    done = signed_in(request, result, next_url)
    if isinstance(done, str):
        return page(request, "mfa_code.html", {**context, "error": done}, 403)
    return done
