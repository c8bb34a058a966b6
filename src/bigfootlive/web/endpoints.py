"""Pages: home, sign-in (password, then the MFA challenge), registration, sign-out.

Every form posts back to its page with the CSRF token (`security.check_csrf` guards the whole
router); the handlers call the identity services the JSON API calls."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.errors import BigfootError
from bigfootlive.events import crud
from bigfootlive.events.schemas import EventStatus
from bigfootlive.identity import registration, sessions, sign_in
from bigfootlive.identity.schemas import LoginIn, RegisterIn
from bigfootlive.mfa import verification
from bigfootlive.routing import JsonRoute
from bigfootlive.tenants import service as tenants
from bigfootlive.web import session as web_session
from bigfootlive.web.outcome import describe, to_signin
from bigfootlive.web.outcome import signed_in as start_session
from bigfootlive.web.render import finish, page, redirect
from bigfootlive.web.security import check_csrf
from bigfootlive.web.session import CHALLENGE_COOKIE, BrowserSubject, cookies_of

router = APIRouter(
    tags=["web"], route_class=JsonRoute, include_in_schema=False, dependencies=[Depends(check_csrf)]
)

ON_AIR = [EventStatus.LIVE, EventStatus.RECONNECTING]
UPCOMING = [EventStatus.SCHEDULED, EventStatus.READY]
Text = Annotated[str, Form(max_length=200)]
OptionalText = Annotated[str, Form(max_length=200)]


def safe_next(value: str | None) -> str:
    """Only a path of this site: never another origin (`//evil`, `https://...`, `/\\evil`)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    return value


def _message(exc: BigfootError) -> str:
    return describe(exc)  # with the wait of a lockout or rate limit, in words


@router.get("/")
async def home(request: Request, subject: BrowserSubject, session: ReadSession) -> Response:
    live = await crud.list_events(
        session, subject, statuses=ON_AIR, owner_id=None, cursor=None, limit=20
    )
    upcoming = await crud.list_events(
        session, subject, statuses=UPCOMING, owner_id=None, cursor=None, limit=20
    )
    return page(request, "home.html", {"live": live[:20], "upcoming": upcoming[:20]})


@router.get("/session", status_code=204)
async def session_ping(request: Request, subject: BrowserSubject) -> Response:
    """For the pages' scripts: renews the session cookie (204), or 401 when signed out."""
    return finish(request, Response(status_code=204 if subject else 401))


# ---------------------------------------------------------------- sign-in


@router.get("/signin")
async def signin_form(request: Request, subject: BrowserSubject, next: str = "/") -> Response:
    if subject is not None:
        return redirect(request, safe_next(next))
    return page(request, "signin.html", {"next": safe_next(next), "form": {}})


async def signed_in(request: Request, result: object, next_url: str) -> Response:
    """`outcome.signed_in` for the sign-in form's steps: its refusal (a factor is required and
    none can be set up here) is shown on the sign-in page."""
    done = start_session(request, result, next_url)
    if isinstance(done, str):
        context = {"next": next_url, "form": {}, "error": done}
        return page(request, "signin.html", context, status=403)
    return done


@router.post("/signin")
async def signin(
    request: Request,
    state: State,
    session: DbSession,
    meta: Meta,
    email: Text,
    password: Annotated[str, Form(max_length=128)],
    tenant: OptionalText = "",
    next: OptionalText = "/",
) -> Response:
    next_url = safe_next(next)
    form = {"email": email, "tenant": tenant}
    try:
        body = LoginIn(tenant=tenant.strip() or None, email=email.strip(), password=password)
    except ValidationError:
        error = "Enter a valid email address."
        return page(request, "signin.html", {"next": next_url, "form": form, "error": error}, 422)
    try:
        result = await sign_in.login(
            state, session, meta, tenant_slug=body.tenant, email=str(body.email),
            password=body.password,
        )  # fmt: skip
    except BigfootError as exc:
        await session.rollback()
        return page(
            request,
            "signin.html",
            {"next": next_url, "form": form, "error": _message(exc)},
            exc.status_code,
        )
    return await signed_in(request, result, next_url)


_APP = frozenset({"totp", "webauthn"})  # answered on /signin/mfa itself, not sent


@router.get("/signin/mfa")
async def mfa_form(
    request: Request, state: State, session: ReadSession, next: str = "/"
) -> Response:
    token = request.cookies.get(CHALLENGE_COOKIE)
    if not token:
        return to_signin(request, safe_next(next))
    try:  # offer only what the account has: no passkey button without a passkey
        types = {f.type for f in await verification.challenge_factors(state, session, token=token)}
    except BigfootError:  # expired or used: the sign-in starts again
        cookies_of(request).clear(CHALLENGE_COOKIE)
        return to_signin(request, safe_next(next))
    context = {"next": safe_next(next), "passkey": "webauthn" in types, "sent": types - _APP}
    return page(request, "mfa.html", context)


@router.post("/signin/mfa")
async def mfa_verify(
    request: Request,
    state: State,
    session: DbSession,
    meta: Meta,
    code: Annotated[str, Form(max_length=32)],
    method: Annotated[str, Form(pattern="^(totp|backup_code)$")] = "totp",
    next: OptionalText = "/",
) -> Response:
    next_url = safe_next(next)
    token = request.cookies.get(CHALLENGE_COOKIE)
    if not token:
        return to_signin(request, next_url)
    try:
        result = await verification.verify(
            state, session, meta, token=token, method=method, factor_id=None,
            code=code.strip().replace(" ", ""), credential=None, password=None,
        )  # fmt: skip
    except BigfootError as exc:
        await session.rollback()
        context = {"next": next_url, "error": _message(exc), "method": method}
        return page(request, "mfa.html", context, exc.status_code)
    return await signed_in(request, result, next_url)


@router.post("/signout")
async def signout(
    request: Request, subject: BrowserSubject, state: State, session: DbSession, meta: Meta
) -> Response:
    if subject is not None:
        await sessions.logout(state, session, meta, subject)
    web_session.end(request)
    return redirect(request, "/")


# ---------------------------------------------------------------- registration


async def _registration_open(session: AsyncSession, slug: str) -> bool | None:
    """None: no tenant named; else whether it takes self-registration."""
    if not slug:
        return None
    tenant = await tenants.get_tenant_by_slug(session, slug)
    return tenant is not None and tenants.settings_of(tenant).allow_self_registration


@router.get("/register")
async def register_form(request: Request, session: ReadSession, tenant: str = "") -> Response:
    tenant = tenant[:63]
    open_ = await _registration_open(session, tenant)
    return page(request, "register.html", {"form": {"tenant": tenant}, "closed": open_ is False})


@router.post("/register")
async def register(
    request: Request,
    state: State,
    session: DbSession,
    meta: Meta,
    email: Text,
    display_name: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=128)],
    tenant: OptionalText = "",
) -> Response:
    form = {"email": email, "tenant": tenant, "display_name": display_name}
    try:
        body = RegisterIn(
            tenant=tenant.strip() or None, email=email.strip(), password=password,
            display_name=display_name.strip(),
        )  # fmt: skip
    except ValidationError:
        error = "Enter a valid email address and a name."
        return page(request, "register.html", {"form": form, "error": error}, 422)
    try:
        await registration.register(
            state, session, meta, tenant_slug=body.tenant, email=str(body.email),
            password=body.password, display_name=body.display_name,
        )  # fmt: skip
    except BigfootError as exc:
        await session.rollback()
        return page(
            request, "register.html", {"form": form, "error": _message(exc)}, exc.status_code
        )
    return page(request, "registered.html", {"email": str(body.email)}, 202)
