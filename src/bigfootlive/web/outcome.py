"""What every sign-in page does with the identity services' answer, and how it words their
refusals: shared by the password, SSO and MFA pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from bigfootlive.errors import BigfootError
from bigfootlive.identity.schemas import MfaChallenge, TokenPair
from bigfootlive.web import session as web_session
from bigfootlive.web.render import redirect
from bigfootlive.web.session import CHALLENGE_COOKIE, cookies_of

ENROL_FIRST = (
    "Your organisation requires two-step verification and your account has none yet: "
    "set it up through the API (POST /api/auth/mfa/setup)."
)

ENROL = "/signin/mfa/enrol"  # the guided set-up of a first factor (enrol.py)

# Refusals whose retry_after says nothing to the user (the challenge is gone: sign in again).
ONCE_LOCKED = frozenset({"mfa_challenge_locked"})


def safe_next(value: str | None) -> str:
    """Only a path of this site: never another origin (`//evil`, `https://...`, `/\\evil`)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    return value


def to_signin(request: Request, next_url: str) -> Response:
    """Back to the sign-in page (a step of it whose challenge cookie is gone or expired)."""
    return redirect(request, f"/signin?next={quote(next_url)}")


def wait_text(seconds: int) -> str:
    """`retry_after` for people: '45 seconds', '15 minutes', '1 hour 5 minutes'."""
    seconds = max(1, int(seconds))
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)
    if minutes < 90:
        return f"{minutes} minutes"
    hours, rest = divmod(minutes, 60)
    return f"{hours} hour{'s' if hours != 1 else ''}" + (f" {rest} minutes" if rest else "")


def describe(exc: BigfootError) -> str:
    """The service's own message, with the wait when it refuses for a while (lockout, rate
    limit), the attempts left of an MFA challenge and what a refused password lacks."""
    text = exc.message
    problems = exc.details.get("problems")
    if isinstance(problems, list) and problems:  # a weak password: say what to change
        text = f"{text}: it " + "; it ".join(str(p) for p in problems) + "."
    retry = exc.details.get("retry_after")
    if retry and exc.code not in ONCE_LOCKED:
        wait = f"try again in {wait_text(int(retry))}"
        later = "try again later"
        text = text.replace(later, wait) if later in text else f"{text.rstrip('.')}; {wait}."
    left = exc.details.get("attempts_left")
    if left is not None:
        text = f"{text.rstrip('.')}. {left} attempt{'s' if left != 1 else ''} left."
    return text


def retry_headers(exc: BigfootError) -> dict[str, str]:
    return {k: v for k, v in exc.headers.items() if k.lower() == "retry-after"}


def mfa_landing(challenge: MfaChallenge, next_url: str) -> str:
    """The challenge page for the account's factors: the authenticator app's (and passkeys')
    page when it has one, else the list of codes it can be sent (SMS, email, backup)."""
    first = "/signin/mfa" if {"totp", "webauthn"} & set(challenge.methods) else "/signin/mfa/other"
    return f"{first}?next={quote(next_url)}"


def enrol_landing(request: Request, result: MfaChallenge, next_url: str) -> Response | None:
    """The guided set-up of a first factor (enrol.py) for an `mfa_enrollment_required` sign-in
    whose organisation allows an authenticator app; None otherwise (the caller's message)."""
    if result.status != "mfa_enrollment_required" or "totp" not in result.allowed_factor_types:
        return None
    cookies_of(request).set(CHALLENGE_COOKIE, result.challenge_token, result.expires_in)
    return redirect(request, f"{ENROL}?next={quote(next_url)}")


def signed_in(request: Request, result: Any, next_url: str) -> Response | str:
    """Start the browser session from a token pair, or go to the MFA challenge; a string is the
    error to show (the account must enrol a factor first)."""
    if isinstance(result, dict):
        result = (
            TokenPair.model_validate(result)
            if result.get("status") == "ok"
            else MfaChallenge.model_validate(result)
        )
    if isinstance(result, MfaChallenge):
        if (guided := enrol_landing(request, result, next_url)) is not None:
            return guided  # the organisation requires a factor: set one up now
        if result.status != "mfa_required":
            return ENROL_FIRST
        cookies_of(request).set(CHALLENGE_COOKIE, result.challenge_token, result.expires_in)
        return redirect(request, mfa_landing(result, next_url))
    assert isinstance(result, TokenPair)  # noqa: S101 - the services answer one of the two
    web_session.start(request, result)
    return redirect(request, next_url)
