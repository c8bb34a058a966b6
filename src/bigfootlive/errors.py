"""Domain errors carry their HTTP status; `http_errors` renders them as the JSON error body.

FastAPI-free: services raise these without importing the web framework."""

from __future__ import annotations

from typing import Any


class BigfootError(Exception):
    status_code = 400
    code = "bad_request"
    message = "Bad request"

    def __init__(
        self, message: str | None = None, *, code: str | None = None, **details: Any
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.details = details
        self.headers: dict[str, str] = {}
        super().__init__(self.message)


class BadRequest(BigfootError):
    pass


class Unauthorized(BigfootError):
    status_code = 401
    code = "unauthorized"
    message = "Authentication required"

    def __init__(self, message: str | None = None, *, code: str | None = None, **details: Any):
        super().__init__(message, code=code, **details)
        self.headers["WWW-Authenticate"] = "Bearer"


class Forbidden(BigfootError):
    status_code = 403
    code = "forbidden"
    message = "You are not allowed to do this"


class NotFound(BigfootError):
    status_code = 404
    code = "not_found"
    message = "Not found"


class Conflict(BigfootError):
    status_code = 409
    code = "conflict"
    message = "Conflict"


class Gone(BigfootError):
    status_code = 410
    code = "gone"
    message = "No longer available"


class PayloadTooLarge(BigfootError):
    status_code = 413
    code = "payload_too_large"
    message = "Request body too large"


class Unprocessable(BigfootError):
    status_code = 422
    code = "validation_error"
    message = "The request is not valid"


class TooManyRequests(BigfootError):
    status_code = 429
    code = "rate_limited"
    message = "Too many requests"

    def __init__(self, message: str | None = None, *, retry_after: int = 1, **details: Any):
        super().__init__(message, retry_after=retry_after, **details)
        self.headers["Retry-After"] = str(retry_after)


class ServiceUnavailable(BigfootError):
    status_code = 503
    code = "unavailable"
    message = "Service unavailable"


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **details}}
