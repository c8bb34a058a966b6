"""The browser session: cookies holding our own session's tokens, issued and checked by the
identity services exactly as the API's bearer tokens are.

* `bfl_session`: the access token (HttpOnly, SameSite=Lax, Path=/), checked on each request by
  `authz.deps.authenticate` (signature, expiry, revoked session, disabled account, tenant);
* `bfl_refresh`: the refresh token (HttpOnly, SameSite=Lax), used once the access token has
  expired, through `identity.sessions.refresh` (rotation and reuse detection included).

Both are `Secure` in production and whenever PUBLIC_BASE_URL is https. Signing out ends the
session (`identity.sessions.logout`), like `POST /api/auth/logout`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection
from starlette.responses import Response

from bigfootlive.authz.deps import authenticate
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.composition import AppState
from bigfootlive.config import Settings
from bigfootlive.deps import app_state, get_request_meta
from bigfootlive.errors import Unauthorized
from bigfootlive.identity import sessions
from bigfootlive.identity.schemas import TokenPair
from bigfootlive.kit.crypto import hash_token
from bigfootlive.web.security import CSRF_COOKIE, new_seed, origin_of, token_for

SESSION_COOKIE = "bfl_session"
REFRESH_COOKIE = "bfl_refresh"
CHALLENGE_COOKIE = "bfl_mfa_challenge"
_REFRESH_MEMO_SECONDS = 30.0


def cookie_secure(settings: Settings) -> bool:
    return settings.node_env == "production" or settings.public_base_url.startswith("https://")


@dataclass
class Cookies:
    """Cookies a request decided to set (value) or clear (None), applied to its response."""

    pending: dict[str, tuple[str | None, int | None]] = field(default_factory=dict)

    def set(self, name: str, value: str, max_age: int | None) -> None:
        self.pending[name] = (value, max_age)

    def clear(self, name: str) -> None:
        self.pending[name] = (None, None)

    def apply(self, response: Response, settings: Settings) -> None:
        secure = cookie_secure(settings)
        for name, (value, max_age) in self.pending.items():
            if value is None:
                response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="lax")
            else:
                response.set_cookie(
                    name, value, max_age=max_age, path="/", secure=secure, httponly=True,
                    samesite="lax",
                )  # fmt: skip


def cookies_of(request: Request) -> Cookies:
    jar: Cookies | None = getattr(request.state, "web_cookies", None)
    if jar is None:
        jar = request.state.web_cookies = Cookies()
    return jar


def csrf_token(request: Request) -> str:
    """The token this page's forms carry; starts the seed cookie when the browser has none."""
    settings: Settings = request.app.state.settings
    jar = cookies_of(request)
    pending = jar.pending.get(CSRF_COOKIE)
    seed = pending[0] if pending and pending[0] else request.cookies.get(CSRF_COOKIE)
    if not seed:
        seed = new_seed()
        jar.set(CSRF_COOKIE, seed, None)
    return token_for(settings, seed)


def start(request: Request, pair: TokenPair) -> None:
    """Sign the browser in with a session's token pair."""
    state = app_state(request)
    jar = cookies_of(request)
    jar.set(SESSION_COOKIE, pair.access_token, state.settings.refresh_token_ttl_seconds)
    jar.set(REFRESH_COOKIE, pair.refresh_token, state.settings.refresh_token_ttl_seconds)
    jar.set(CSRF_COOKIE, new_seed(), None)  # a new token after signing in
    jar.clear(CHALLENGE_COOKIE)


def end(request: Request) -> None:
    jar = cookies_of(request)
    for name in (SESSION_COOKIE, REFRESH_COOKIE, CHALLENGE_COOKIE):
        jar.clear(name)


class _Refresher:
    """Rotates a refresh token once when several requests of one page (the page, its scripts'
    calls) arrive with the same expired access token: the later ones reuse the new pair instead
    of presenting the old refresh token again, which would end the session as a stolen one."""

    def __init__(self) -> None:
        self.locks: dict[str, asyncio.Lock] = {}
        self.done: dict[str, tuple[float, TokenPair]] = {}

    async def refresh(self, request: Request, state: AppState, refresh_token: str) -> TokenPair:
        key = hash_token(refresh_token)
        lock = self.locks.setdefault(key, asyncio.Lock())
        async with lock:
            now = time.monotonic()
            self.done = {k: v for k, v in self.done.items() if v[0] > now}
            if key in self.done:
                return self.done[key][1]
            meta = await get_request_meta(request, state)
            async with state.db.transaction() as session:
                pair = await sessions.refresh(state, session, meta, refresh_token=refresh_token)
            self.done[key] = (now + _REFRESH_MEMO_SECONDS, pair)
        self.locks.pop(key, None)
        return pair


def _refresher(request: Request) -> _Refresher:
    found: _Refresher | None = getattr(request.app.state, "web_refresher", None)
    if found is None:
        found = request.app.state.web_refresher = _Refresher()
    return found


async def browser_subject(request: Request) -> AuthSubject | None:
    """Who the browser is signed in as, or None; renews an expired access token."""
    state = app_state(request)
    cached: AuthSubject | None = getattr(request.state, "web_subject", None)
    if cached is not None:
        return cached
    token = request.cookies.get(SESSION_COOKIE)
    refresh_token = request.cookies.get(REFRESH_COOKIE)
    if not token and not refresh_token:
        return None
    subject: AuthSubject | None = None
    try:
        if not token:
            raise Unauthorized(code="token_expired")
        subject = await authenticate(state, token)
    except Unauthorized as exc:
        if exc.code == "token_expired" and refresh_token:
            try:
                pair = await _refresher(request).refresh(request, state, refresh_token)
                subject = await authenticate(state, pair.access_token)
                start(request, pair)
            except Unauthorized:
                subject = None
    if subject is None:
        end(request)
    request.state.web_subject = subject
    return subject


BrowserSubject = Annotated[AuthSubject | None, Depends(browser_subject)]


def socket_token(conn: HTTPConnection, settings: Settings) -> str | None:
    """The access token of a WebSocket opened by one of our pages: the session cookie, taken
    only when the page's origin is ours (a socket from another site would carry the cookie
    too: cross-site WebSocket hijacking)."""
    token = conn.cookies.get(SESSION_COOKIE)
    origin = conn.headers.get("origin")
    if not token or origin is None:
        return None
    host = conn.headers.get("host", "")
    ours = {
        f"http://{host}".lower(),
        f"https://{host}".lower(),
        origin_of(settings.public_base_url),
    }
    return token if origin.lower() in ours else None
