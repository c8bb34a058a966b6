"""`/invite/accept?token=`: the page an invitation's email links to. The member chooses a
password (`identity.invitations.accept`, the tenant's policy) and is signed in through the
ordinary sign-in (`identity.sign_in.login`: lockout, MFA policy), as
`POST /api/auth/invitation/accept`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import Response

from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.errors import BigfootError
from bigfootlive.identity import invitations, sign_in
from bigfootlive.identity.recovery import InvalidOneTimeToken
from bigfootlive.routing import JsonRoute
from bigfootlive.web.endpoints import signed_in
from bigfootlive.web.outcome import describe
from bigfootlive.web.render import page
from bigfootlive.web.security import check_csrf

router = APIRouter(
    tags=["web"], route_class=JsonRoute, include_in_schema=False, dependencies=[Depends(check_csrf)]
)


@router.get("/invite/accept")
async def accept_form(request: Request, session: ReadSession, token: str = "") -> Response:
    """A link cut short or mangled by a mail program says what to do, like an expired one (as
    `/reset-password` and `/verify-email` do), not a form validation error."""
    try:
        if not 10 <= len(token) <= 200:
            raise InvalidOneTimeToken()
        invitation = await invitations.peek(session, token)
    except BigfootError as exc:
        return page(request, "invite.html", {"error": exc.message, "invalid": True}, 400)
    return page(request, "invite.html", {"invitation": invitation, "token": token})


@router.post("/invite/accept")
async def accept(
    request: Request,
    state: State,
    session: DbSession,
    meta: Meta,
    token: Annotated[str, Form(min_length=10, max_length=200)],
    password: Annotated[str, Form(max_length=128)],
    password_again: Annotated[str, Form(max_length=128)],
) -> Response:
    try:
        invitation = await invitations.peek(session, token)
    except BigfootError as exc:
        return page(request, "invite.html", {"error": exc.message, "invalid": True}, 400)
    context = {"invitation": invitation, "token": token}
    if password != password_again:
        return page(request, "invite.html", {**context, "error": "The passwords differ."}, 422)
    try:
        user, tenant = await invitations.accept(
            state, session, meta, token=token, password=password
        )
        # Committed before the sign-in, whose refusals (a lockout, MFA) keep the password.
        await session.commit()
        result = await sign_in.login(
            state, session, meta, tenant_slug=tenant.slug, email=user.email, password=password
        )
    except BigfootError as exc:
        await session.rollback()
        return page(request, "invite.html", {**context, "error": describe(exc)}, exc.status_code)
    return await signed_in(request, result, "/?welcome=1")  # home says the password is set
