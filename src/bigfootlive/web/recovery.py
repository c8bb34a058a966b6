"""Pages: forgotten password (request a link by email), the emailed link's new-password form,
and the email-confirmation link (registration, or an existing account's address).

The links are the ones `identity.recovery` and `identity.registration` already email
(`/reset-password?token=`, `/verify-email?token=`). Opening a link never spends it (mail
scanners open links): the page shows a form, and its POST calls the same services as
`POST /api/auth/password/reset` and `POST /api/auth/email/verify`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from pydantic import ValidationError
from starlette.responses import Response

from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.errors import BigfootError
from bigfootlive.identity import recovery, registration
from bigfootlive.identity.schemas import EmailVerifyIn, PasswordForgotIn, PasswordResetIn
from bigfootlive.routing import JsonRoute
from bigfootlive.web.outcome import describe, retry_headers
from bigfootlive.web.render import page
from bigfootlive.web.security import check_csrf

router = APIRouter(
    tags=["web"], route_class=JsonRoute, include_in_schema=False, dependencies=[Depends(check_csrf)]
)

Token = Annotated[str, Form(max_length=200)]
Password = Annotated[str, Form(max_length=128)]
EXPIRED = "This link is invalid, expired or already used. Ask for a new one below."


def _refused(
    request: Request, template: str, context: dict[str, object], exc: BigfootError
) -> Response:
    response = page(request, template, {**context, "error": describe(exc)}, exc.status_code)
    response.headers.update(retry_headers(exc))
    return response


# ---------------------------------------------------------------- forgotten password


@router.get("/forgot-password")
async def forgot_form(request: Request, email: str = "", tenant: str = "") -> Response:
    return page(request, "forgot.html", {"form": {"email": email[:200], "tenant": tenant[:63]}})


@router.post("/forgot-password")
async def forgot(
    request: Request,
    state: State,
    session: DbSession,
    meta: Meta,
    email: Annotated[str, Form(max_length=200)],
    tenant: Annotated[str, Form(max_length=63)] = "",
) -> Response:
    form = {"email": email, "tenant": tenant}
    try:
        body = PasswordForgotIn(tenant=tenant.strip() or None, email=email.strip())
    except ValidationError:
        error = "Enter a valid email address."
        return page(request, "forgot.html", {"form": form, "error": error}, 422)
    try:
        await recovery.request_password_reset(
            state, session, meta, tenant_slug=body.tenant, email=str(body.email)
        )
    except BigfootError as exc:
        await session.rollback()
        return _refused(request, "forgot.html", {"form": form}, exc)
    # The same answer whether or not the address has an account here.
    return page(request, "forgot_sent.html", {"email": str(body.email)}, 202)


# ---------------------------------------------------------------- the emailed reset link


@router.get("/reset-password")
async def reset_form(request: Request, session: ReadSession, token: str = "") -> Response:
    if not await recovery.reset_link_usable(session, token):
        return page(request, "reset.html", {"token": "", "error": EXPIRED}, 400)
    return page(request, "reset.html", {"token": token})


@router.post("/reset-password")
async def reset(
    request: Request,
    state: State,
    session: DbSession,
    meta: Meta,
    token: Token,
    password: Password,
    confirm: Password,
) -> Response:
    if password != confirm:
        error = "The two passwords differ; type the same new password twice."
        return page(request, "reset.html", {"token": token, "error": error}, 422)
    try:
        body = PasswordResetIn(token=token, new_password=password)
    except ValidationError:
        return page(request, "reset.html", {"token": "", "error": EXPIRED}, 400)
    try:
        await recovery.reset_password(
            state, session, meta, token=body.token, new_password=body.new_password
        )
    except recovery.InvalidOneTimeToken:
        await session.rollback()
        return page(request, "reset.html", {"token": "", "error": EXPIRED}, 400)
    except BigfootError as exc:  # a weak password: the link stays usable
        await session.rollback()
        return _refused(request, "reset.html", {"token": token}, exc)
    return page(request, "reset_done.html", {})


# ---------------------------------------------------------------- the emailed confirmation link


@router.get("/verify-email")
async def verify_form(request: Request, token: str = "") -> Response:
    if not 10 <= len(token) <= 200:
        return page(request, "verify_email.html", {"token": "", "error": EXPIRED}, 400)
    return page(request, "verify_email.html", {"token": token})


@router.post("/verify-email")
async def verify(
    request: Request, state: State, session: DbSession, meta: Meta, token: Token
) -> Response:
    try:
        body = EmailVerifyIn(token=token)
        await registration.confirm_email(state, session, meta, token=body.token)
    except ValidationError:
        return page(request, "verify_email.html", {"token": "", "error": EXPIRED}, 400)
    except recovery.InvalidOneTimeToken:
        await session.rollback()
        return page(request, "verify_email.html", {"token": "", "error": EXPIRED}, 400)
    except BigfootError as exc:
        await session.rollback()
        return _refused(request, "verify_email.html", {"token": ""}, exc)
    return page(request, "verify_email.html", {"token": "", "done": True})
