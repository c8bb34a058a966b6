"""A passkey as the answer to the sign-in's MFA challenge: the passkey's request options for the
challenge in the cookie (`mfa.verification.prepare_challenge`, as `POST /api/auth/mfa/challenge`),
then its answer (`mfa.verification.verify`, as `POST /api/auth/mfa/verify`), which signs the
browser in. The ceremony runs in the browser (`static/js/passkey.mjs`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from bigfootlive.composition import AppState
from bigfootlive.deps import DbSession, Meta, State
from bigfootlive.errors import BadRequest, BigfootError
from bigfootlive.identity.schemas import TokenPair
from bigfootlive.kit.request import RequestMeta
from bigfootlive.mfa import challenges, verification
from bigfootlive.mfa import repository as mfa_repo
from bigfootlive.routing import JsonRoute
from bigfootlive.web import session as web_session
from bigfootlive.web.account_mfa import Credential, Next, _credential, _safe_next
from bigfootlive.web.outcome import describe, to_signin
from bigfootlive.web.render import page, redirect
from bigfootlive.web.security import check_csrf
from bigfootlive.web.session import CHALLENGE_COOKIE, cookies_of

router = APIRouter(
    tags=["web"], route_class=JsonRoute, include_in_schema=False, dependencies=[Depends(check_csrf)]
)


async def _signin_passkey_page(
    request: Request,
    state: AppState,
    session: AsyncSession,
    meta: RequestMeta,
    next_url: str,
    error: str | None = None,
    status: int = 200,
) -> Response:
    """The passkey's request options for the sign-in challenge in the cookie."""
    token = request.cookies.get(CHALLENGE_COOKIE) or ""
    challenge = await challenges.load(state, token) if token else None
    if challenge is None:
        if error is None:
            return to_signin(request, next_url)
        cookies_of(request).clear(CHALLENGE_COOKIE)  # over (locked, expired): sign in again
        context = {"next": next_url, "form": {}, "error": error}
        return page(request, "signin.html", context, status)
    passkeys = await mfa_repo.user_factors(
        session, challenge.tenant_id, challenge.user_id, types=["webauthn"]
    )
    try:
        if not passkeys:
            raise BadRequest("Your account has no passkey", code="no_passkey")
        out = await verification.prepare_challenge(
            state, session, meta, token=token, factor_id=passkeys[0].id
        )
    except BigfootError as exc:
        await session.rollback()
        context = {"next": next_url, "error": describe(exc), "method": "totp"}
        return page(request, "mfa.html", context, exc.status_code)
    shown: dict[str, Any] = {"next": next_url, "options": out.webauthn_options, "error": error}
    return page(request, "mfa_passkey.html", shown, status)


@router.post("/signin/mfa/passkey")
async def signin_passkey(
    request: Request, state: State, session: DbSession, meta: Meta, next: Next = "/"
) -> Response:
    return await _signin_passkey_page(request, state, session, meta, _safe_next(next, "/"))


@router.post("/signin/mfa/passkey/verify")
async def signin_passkey_verify(
    request: Request,
    state: State,
    session: DbSession,
    meta: Meta,
    credential: Credential,
    next: Next = "/",
) -> Response:
    next_url = _safe_next(next, "/")
    token = request.cookies.get(CHALLENGE_COOKIE)
    if not token:
        return to_signin(request, next_url)
    try:
        result = await verification.verify(
            state, session, meta, token=token, method="webauthn", factor_id=None, code=None,
            credential=_credential(credential), password=None,
        )  # fmt: skip
    except BigfootError as exc:
        await session.rollback()
        return await _signin_passkey_page(
            request, state, session, meta, next_url, describe(exc), exc.status_code
        )
    if not isinstance(result, TokenPair):
        return to_signin(request, next_url)
    web_session.start(request, result)
    return redirect(request, next_url)
