"""Pages: single sign-on through home-realm discovery.

The visitor gives an email address; `sso.flows.initiate` (as `POST /api/auth/sso/initiate`)
finds the organisation's provider from its domain. OIDC, OAuth2 and SAML send the browser to
the provider; its answer comes back to the API's own callback (`/api/auth/sso/callback`, the
SAML ACS), which ends at this app's `/signin/sso/done` with a one-time code, exchanged as in
`POST /api/auth/sso/exchange`. LDAP has no redirect: the page asks for the directory's user
name and password and posts them to `sso.flows.ldap_login`. Whatever the protocol, the result
is the API's: a session, or the MFA challenge of the tenant's policy.

Login CSRF: the flow is bound to the browser that started it. `bfl_sso` (HttpOnly, SameSite=
Lax, ten minutes) holds a random value whose hash is in the return URL; `/signin/sso/done`
refuses a code arriving without it, so nobody can sign a victim's browser into their own
account by sending it a finished flow's link.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from pydantic import ValidationError
from starlette.responses import Response

from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.errors import BigfootError
from bigfootlive.kit.crypto import random_token
from bigfootlive.routing import JsonRoute
from bigfootlive.sso import flows
from bigfootlive.sso.schemas import InitiateIn, LdapLoginIn
from bigfootlive.tenants import service as tenants
from bigfootlive.web.outcome import describe, retry_headers, safe_next, signed_in
from bigfootlive.web.render import page
from bigfootlive.web.security import check_csrf
from bigfootlive.web.session import BrowserSubject, cookies_of

router = APIRouter(
    tags=["web"], route_class=JsonRoute, include_in_schema=False, dependencies=[Depends(check_csrf)]
)

SSO_COOKIE = "bfl_sso"
Text = Annotated[str, Form(max_length=200)]
Slug = Annotated[str, Form(max_length=63)]
NOT_THIS_BROWSER = "This sign-in was not started in this browser, or took too long. Start it again."


def _binding(nonce: str) -> str:
    return hashlib.sha256(b"bfl-sso:" + nonce.encode()).hexdigest()[:32]


def _return_url(state: State, nonce: str, next_url: str) -> str:
    query = urlencode({"b": _binding(nonce), "next": next_url})
    return f"{state.settings.public_base_url}{flows.BROWSER_RETURN_PATH}?{query}"


def _form(request: Request, context: dict[str, object], exc: BigfootError) -> Response:
    response = page(request, "sso.html", {**context, "error": describe(exc)}, exc.status_code)
    response.headers.update(retry_headers(exc))
    return response


@router.get("/signin/sso")
async def sso_form(
    request: Request, subject: BrowserSubject, next: str = "/", email: str = ""
) -> Response:
    if subject is not None:
        return page(request, "sso.html", {"next": safe_next(next), "form": {}, "signed_in": True})
    return page(request, "sso.html", {"next": safe_next(next), "form": {"email": email[:200]}})


@router.post("/signin/sso")
async def sso_start(
    request: Request,
    state: State,
    session: ReadSession,
    meta: Meta,
    email: Text,
    tenant: Slug = "",
    next: Text = "/",
) -> Response:
    next_url = safe_next(next)
    context: dict[str, object] = {"next": next_url, "form": {"email": email, "tenant": tenant}}
    nonce = random_token()
    try:
        body = InitiateIn(
            tenant=tenant.strip() or None, email=email.strip(),
            redirect_uri=_return_url(state, nonce, next_url),
        )  # fmt: skip
    except ValidationError:
        return page(request, "sso.html", {**context, "error": "Enter a valid email address."}, 422)
    try:
        started = await flows.initiate(state, session, meta, body)
    except BigfootError as exc:
        return _form(request, context, exc)
    if started.redirect_url is None:  # LDAP: the directory's password, on our own form
        org = await tenants.resolve_tenant(session, body.tenant, str(body.email))
        ldap = {"tenant": org.slug if org else "", "provider_id": str(started.provider_id)}
        return page(request, "sso_ldap.html", {**context, "ldap": ldap, "username": email})
    cookies_of(request).set(SSO_COOKIE, nonce, flows.FLOW_TTL)
    # A page with the link rather than a redirect: the policy's `form-action 'self'` would
    # stop a form's redirect to another origin; static/js/sso.mjs follows the link at once.
    return page(request, "sso_go.html", {"url": started.redirect_url, "protocol": started.protocol})


@router.get("/signin/sso/done")
async def sso_done(
    request: Request, state: State, b: str = "", sso_code: str = "", next: str = "/"
) -> Response:
    nonce = request.cookies.get(SSO_COOKIE, "")
    cookies_of(request).clear(SSO_COOKIE)
    context: dict[str, object] = {"next": safe_next(next), "form": {}}
    if not nonce or not b or not hmac.compare_digest(_binding(nonce), b[:64]):
        return page(request, "sso.html", {**context, "error": NOT_THIS_BROWSER}, 400)
    try:
        result = await flows.exchange(state, sso_code[:200])
    except BigfootError as exc:
        return _form(request, context, exc)
    done = signed_in(request, result, safe_next(next))
    if isinstance(done, str):
        return page(request, "sso.html", {**context, "error": done}, 403)
    return done


@router.post("/signin/ldap")
async def ldap_signin(
    request: Request,
    state: State,
    session: DbSession,
    meta: Meta,
    tenant: Slug,
    provider_id: Annotated[uuid.UUID, Form()],
    username: Annotated[str, Form(max_length=256)],
    password: Annotated[str, Form(max_length=1024)],
    next: Text = "/",
) -> Response:
    next_url = safe_next(next)
    ldap = {"tenant": tenant, "provider_id": str(provider_id)}
    context: dict[str, object] = {"next": next_url, "ldap": ldap, "username": username}
    try:
        body = LdapLoginIn(
            tenant=tenant, provider_id=provider_id, username=username.strip(), password=password
        )
    except ValidationError:
        error = "Enter your user name and password."
        return page(request, "sso_ldap.html", {**context, "error": error}, 422)
    try:
        outcome = await flows.ldap_login(state, session, meta, body)
    except BigfootError as exc:
        await session.rollback()
        response = page(
            request, "sso_ldap.html", {**context, "error": describe(exc)}, exc.status_code
        )
        response.headers.update(retry_headers(exc))
        return response
    done = signed_in(request, outcome.result, next_url)
    if isinstance(done, str):
        return page(request, "sso_ldap.html", {**context, "error": done}, 403)
    return done
