"""Browser-facing protections: the Content-Security-Policy and headers of every page, and CSRF.

CSRF is a signed double submit: the `bfl_csrf` cookie (HttpOnly, SameSite=Lax) holds a random
seed; forms carry `csrf_token` and scripts send `X-CSRF-Token`, both the HMAC of that seed under
a key derived from JWT_SECRET. A site that can plant a cookie still cannot compute the token.
Every state-changing method of a page route is checked (`check_csrf`, a dependency of the web
router), and an `Origin` header, when sent, must be our own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import Request

from bigfootlive.config import Settings
from bigfootlive.errors import Forbidden

CSRF_COOKIE = "bfl_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class CsrfRefused(Forbidden):
    code = "csrf_failed"
    message = "The form has expired or did not come from this site; reload the page and retry"


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def content_security_policy(settings: Settings) -> str:
    """No inline script or style, nothing from elsewhere but the media origin (HLS)."""
    return policy_with_media(origin_of(settings.cdn_base_url))


def policy_with_media(media: str) -> str:
    """The pages' policy with `media` (an origin) as the one other origin they may reach."""
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src 'self' data: {media}",  # thumbnails and posters
            f"media-src 'self' blob: {media}",
            f"connect-src 'self' {media}",
            "worker-src 'self' blob:",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def page_headers(settings: Settings) -> dict[str, str]:
    """The page's own policy; the request middleware adds the other security headers
    (nosniff, frame denial, HSTS) to every answer. `same-origin` rather than the API's
    `no-referrer`: under `no-referrer` a browser sends `Origin: null` with a form, and the
    CSRF check could no longer tell our forms from another site's."""
    return {
        "Content-Security-Policy": content_security_policy(settings),
        "Referrer-Policy": "same-origin",
    }


def _key(settings: Settings) -> bytes:
    return hashlib.sha256(b"bfl-csrf:" + settings.jwt_secret.get_secret_value().encode()).digest()


def new_seed() -> str:
    return secrets.token_urlsafe(32)


def token_for(settings: Settings, seed: str) -> str:
    mac = hmac.new(_key(settings), seed.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def own_origins(request: Request, settings: Settings) -> set[str]:
    return {origin_of(str(request.base_url)), origin_of(settings.public_base_url)}


async def check_csrf(request: Request) -> None:
    """Refuses (403 `csrf_failed`) a state-changing request without the page's token."""
    if request.method in SAFE_METHODS:
        return
    settings: Settings = request.app.state.settings
    origin = request.headers.get("origin")
    if origin is not None and origin.lower() not in own_origins(request, settings):
        raise CsrfRefused()
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise CsrfRefused()
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    seed = request.cookies.get(CSRF_COOKIE)
    if not seed or not sent or not hmac.compare_digest(sent, token_for(settings, seed)):
        raise CsrfRefused()
