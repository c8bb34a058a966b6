"""Pages: the guided set-up of a first factor at sign-in, when the organisation requires
two-step verification and the account has none yet (`mfa_enrollment_required`).

The sign-in hands out an enrolment challenge instead of a session; it rides in the challenge
cookie (`bfl_mfa_challenge`) to these pages, which set up an authenticator app with it
(`mfa.enrolment.start_setup` and `confirm_setup`, as `POST /api/auth/mfa/setup` and
`/setup/confirm` with `challenge_token`). The confirmation signs the browser in and shows the
backup codes once. Other factor types (passkeys, SMS, email) are enrolled from
`/account/security` once signed in; an organisation that allows no authenticator app keeps the
sign-in page's message.

Cancel (at any step) forgets the set-up not yet confirmed (`mfa.enrolment.abandon_setup`) and the
sign-in's challenge, and goes back to the sign-in page (which says so): nothing half set up
stays, and the sign-in cannot be resumed. Once the wrong codes ran out, "Start again" forgets the
set-up and starts a new one (a new key) with the same challenge, while it is valid."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from bigfootlive.composition import AppState
from bigfootlive.deps import DbSession, Meta, State
from bigfootlive.errors import BigfootError
from bigfootlive.kit.request import RequestMeta
from bigfootlive.mfa import challenges, enrolment
from bigfootlive.mfa.schemas import ConfirmOut
from bigfootlive.routing import JsonRoute
from bigfootlive.web import session as web_session
from bigfootlive.web.account_mfa import pending_key, totp_key
from bigfootlive.web.outcome import ENROL, describe, safe_next, to_signin
from bigfootlive.web.render import page, redirect
from bigfootlive.web.security import check_csrf
from bigfootlive.web.session import CHALLENGE_COOKIE, cookies_of

router = APIRouter(
    tags=["web"], route_class=JsonRoute, include_in_schema=False, dependencies=[Depends(check_csrf)]
)

# The challenge is over (expired, used): the set-up starts again from the sign-in. (Its wrong
# codes running out, `mfa_challenge_locked`, ends the set-up, not the challenge: start again.)
GONE = ("invalid_mfa_challenge",)
Next = Annotated[str, Form(max_length=200)]


def _refused(request: Request, context: dict[str, Any], exc: BigfootError) -> Response:
    if exc.code in GONE:
        cookies_of(request).clear(CHALLENGE_COOKIE)
        context = {**context, "restart": True}
    return page(request, "mfa_enrol.html", {**context, "error": describe(exc)}, exc.status_code)


async def _actor(state: AppState, session: AsyncSession, token: str) -> enrolment.Actor:
    return await enrolment.resolve_actor(state, session, subject=None, challenge_token=token)


@router.get(ENROL)
async def enrol_form(request: Request, next: str = "/") -> Response:
    next_url = safe_next(next)
    if not request.cookies.get(CHALLENGE_COOKIE):
        return to_signin(request, next_url)
    return page(request, "mfa_enrol.html", {"next": next_url})


@router.post(ENROL)
async def enrol_start(
    request: Request,
    state: State,
    session: DbSession,
    meta: Meta,
    next: Next = "/",
    replaces: Annotated[uuid.UUID | None, Form()] = None,
) -> Response:
    """A new set-up (a new key); `replaces`: the one it starts again, forgotten."""
    next_url = safe_next(next)
    token = request.cookies.get(CHALLENGE_COOKIE)
    if not token:
        return to_signin(request, next_url)
    try:
        actor = await _actor(state, session, token)
        if replaces is not None:
            await enrolment.abandon_setup(state, session, meta, actor, replaces)
        out = await enrolment.start_setup(
            state, session, meta, actor, factor_type="totp", name=None, phone=None
        )
    except BigfootError as exc:
        await session.rollback()
        return _refused(request, {"next": next_url}, exc)
    return page(request, "mfa_enrol.html", {"next": next_url, **totp_key(out)})


@router.post(f"{ENROL}/confirm")
async def enrol_confirm(
    request: Request,
    state: State,
    session: DbSession,
    meta: Meta,
    factor_id: Annotated[uuid.UUID, Form()],
    code: Annotated[str, Form(max_length=32)],
    next: Next = "/",
) -> Response:
    next_url = safe_next(next)
    token = request.cookies.get(CHALLENGE_COOKIE)
    if not token:
        return to_signin(request, next_url)
    context: dict[str, Any] = {"next": next_url, "factor_id": factor_id, "confirming": True}
    try:
        actor = await _actor(state, session, token)
        out = await _confirmed(state, session, meta, actor, factor_id, code)
    except BigfootError as exc:
        await session.rollback()
        if exc.code not in GONE:  # the same key again, to try another code
            context.update(await pending_key(state, session, None, token, factor_id))
        return _refused(request, context, exc)
    cookies_of(request).clear(CHALLENGE_COOKIE)
    if out.session is not None:
        web_session.start(request, out.session)
    done = {"next": next_url, "factor": out.factor, "codes": out.backup_codes}
    return page(request, "mfa_enrolled.html", done)


async def _confirmed(
    state: AppState,
    session: AsyncSession,
    meta: RequestMeta,
    actor: enrolment.Actor,
    factor_id: uuid.UUID,
    code: str,
) -> ConfirmOut:
    code = code.strip().replace(" ", "")
    return await enrolment.confirm_setup(
        state, session, meta, actor, factor_id=factor_id, code=code, credential=None
    )


@router.post(f"{ENROL}/cancel")
async def enrol_cancel(
    request: Request,
    state: State,
    session: DbSession,
    meta: Meta,
    next: Next = "/",
    factor_id: Annotated[uuid.UUID | None, Form()] = None,
) -> Response:
    """Back to the sign-in page: the set-up (if one began) and the challenge forgotten."""
    next_url = safe_next(next)
    token = request.cookies.get(CHALLENGE_COOKIE)
    cookies_of(request).clear(CHALLENGE_COOKIE)
    challenge = await challenges.load(state, token) if token else None
    if challenge is not None and challenge.purpose == "enroll":
        if factor_id is not None:
            try:
                actor = await _actor(state, session, token or "")
            except BigfootError:
                await session.rollback()
            else:
                await enrolment.abandon_setup(state, session, meta, actor, factor_id)
        await challenges.discard(state, challenge)
    return redirect(request, f"/signin?next={quote(next_url)}&cancelled=1")
