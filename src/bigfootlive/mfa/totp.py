"""TOTP (RFC 6238) with pyotp: 6 digits, 30-second steps, one step of clock skew either way.

pyotp's `verify` accepts the same code again within its window; we return the matching time
step instead, and the caller refuses any step not later than the last one accepted.
"""

from __future__ import annotations

import hmac
import io
import time

import pyotp
import segno


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=4, xmldecl=False)
    return buffer.getvalue().decode()


def current_step(now: float | None = None) -> int:
    return int(now if now is not None else time.time()) // 30


def matching_step(secret: str, code: str, *, now: float | None = None) -> int | None:
    """The latest time step within ±1 of now whose code is `code`, else None."""
    code = code.replace(" ", "").strip()
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    step = current_step(now)
    for candidate in (step + 1, step, step - 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None
