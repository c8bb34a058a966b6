"""Pure ASGI middleware: request id + access log + metrics, security headers, body size cap."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bigfootlive.errors import error_body
from bigfootlive.observability.metrics import HTTP_IN_FLIGHT, HTTP_LATENCY, HTTP_REQUESTS

log = structlog.get_logger("bigfootlive.access")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
_API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_DOCS_PATHS = ("/docs", "/api-docs", "/redoc")


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def begin_request(scope: Scope) -> str:
    """The request's id (X-Request-ID when well-formed, else a new one), kept in the scope and
    bound to every log line of the request."""
    incoming = _header(scope, b"x-request-id")
    request_id = incoming if incoming and _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
    scope.setdefault("state", {})["request_id"] = request_id
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    return request_id


def answer_headers(scope: Scope, headers: Any, request_id: str) -> list[tuple[bytes, bytes]]:
    """An answer's headers with the request id and the security headers it does not set."""
    out = list(headers)
    out.append((b"x-request-id", request_id.encode()))
    present = {name.lower() for name, _ in out}
    out.extend(h for h in SECURITY_HEADERS if h[0] not in present)
    # a page of the web app sets its own policy (bigfootlive.web.security)
    if not scope["path"].startswith(_DOCS_PATHS) and _API_CSP[0] not in present:
        out.append(_API_CSP)
    return out


def request_done(method: str, route: str, status: int, elapsed: float) -> None:
    """The request's metrics and its access log line."""
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_LATENCY.labels(method, route).observe(elapsed)
    if route not in ("/health", "/metrics"):
        log.info(
            "request",
            method=method,
            route=route,
            status=status,
            duration_ms=round(elapsed * 1000, 2),
        )


class RequestContextMiddleware:
    """Gives each request an id (from X-Request-ID when well-formed), logs and measures it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = begin_request(scope)
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        status = 500
        start = time.perf_counter()
        HTTP_IN_FLIGHT.inc()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = answer_headers(scope, message.get("headers", []), request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            HTTP_IN_FLIGHT.dec()
            elapsed = time.perf_counter() - start
            request_done(scope["method"], _route_template(scope), status, elapsed)


class BodySizeLimitMiddleware:
    """Refuses bodies over `max_bytes` with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if declared_too_large(scope, self.max_bytes):
            await send_too_large(send)
            return
        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive(receive, self.max_bytes), tracking_send)
        except _BodyTooLarge:
            if not response_started:
                await send_too_large(send)


class _BodyTooLarge(HTTPException):
    """Raised from `receive` once the body passes the limit. An HTTPException, because FastAPI
    turns any other exception met while reading a body into a 400 ("error parsing the body")
    and re-raises only these; the app's handler then answers 413 `payload_too_large`."""

    def __init__(self) -> None:
        super().__init__(413, "Request body too large")


def declared_too_large(scope: Scope, max_bytes: int) -> bool:
    """Whether the request's Content-Length is over `max_bytes` (or not a number)."""
    declared = _header(scope, b"content-length")
    return declared is not None and (not declared.isdigit() or int(declared) > max_bytes)


def limited_receive(receive: Receive, max_bytes: int) -> Receive:
    """`receive`, raising an HTTPException 413 (`_BodyTooLarge`) once the body passes
    `max_bytes`."""
    received = 0

    async def limited() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise _BodyTooLarge()
        return message

    return limited


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def send_too_large(send: Send) -> None:
    """The 413 of a body over the limit."""
    await _send_json(send, 413, error_body("payload_too_large", "Request body too large"))


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
