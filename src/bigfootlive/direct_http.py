"""HTTP requests answered before the app's stack: FastAPI's layers, our middleware, its routing
and its endpoint machinery, which cost a hot route more than its own work.

The app (`app.BigfootLiveApp`) hands a `POST` to one of `DirectHttp.routes` here (the media
servers' hooks, `streaming.endpoints.DirectHook`; the password sign-in,
`identity.endpoints.DirectLogin`; by a path template, `DirectHttp.templated`: the players'
beacons, `analytics.endpoints.DirectBeacons`). What the stack's layers do for such a request is
done here, with their own pieces: the request id, the security headers, the metrics and the
access line (`observability.middleware`), the body limit (413), `Cache-Control: no-store` when
the app's route carries credentials (`kit.nostore`), acting for no tenant until the request says
whose rows (`app.RowScopePerRequest`), every failure answered by the app's own exception
handlers (`{"error": {...}}`), and what only the last-resort handler answers (an unexpected
error) answered by it and raised on to the server, as Starlette's `ServerErrorMiddleware` does.
A request with an `Origin` header (CORS applies) takes the stack (to a templated route, only
when the app answers CORS: without `CORS_ORIGINS` the stack has no CORS layer and an `Origin`
changes nothing there; browsers send one with every `POST`), and so does any request a route's
`prepare` declines (a body the route's endpoint would refuse: the stack refuses it, with
its own error body). The routes themselves stay in the app: the same handlers, and the API
reference.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import FastAPI, Request, Response
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive, Scope, Send

from bigfootlive.kit.credentials import route_carries_credentials
from bigfootlive.kit.nostore import NO_STORE
from bigfootlive.observability.metrics import HTTP_IN_FLIGHT
from bigfootlive.observability.middleware import (
    answer_headers,
    begin_request,
    declared_too_large,
    limited_receive,
    request_done,
    send_too_large,
)
from bigfootlive.row_security import NO_ROWS, row_scope

# `DirectRoute.prepare`'s verdict for a request the stack answers.
STACK: Any = object()
_NO_STORE_NAMES = frozenset(name for name, _ in NO_STORE)


@dataclass(frozen=True, slots=True)
class Answer:
    """A route's answer: its headers (names in lower case) without `content-length`."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class DirectRoute(Protocol):
    async def prepare(self, scope: Scope, receive: Receive, max_bytes: int) -> tuple[Any, Receive]:
        """Before any layer's work: what `answer` needs (or `STACK`), and the `receive` that
        yields the whole body still (the one given, unless the body was read)."""
        ...

    async def answer(self, request: Request, prepared: Any) -> Answer: ...


class TemplatedRoute(DirectRoute, Protocol):
    """A route whose path has a parameter: found by `matches`, labelled by `template` (the
    route's path as the router declares it) in the metrics and the access line."""

    @property
    def template(self) -> str: ...

    def matches(self, path: str) -> bool: ...


async def unprepared(scope: Scope, receive: Receive, max_bytes: int) -> tuple[Any, Receive]:
    """`DirectRoute.prepare` of a route that reads its body itself."""
    return None, receive


def replay(messages: list[Message], receive: Receive) -> Receive:
    """`receive` that yields `messages` again first."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


async def read_body(receive: Receive, max_bytes: int) -> tuple[bytes | None, Receive]:
    """The request's body, and a `receive` that yields it again; None for the body when it
    passes `max_bytes` or the client went away (what was read is yielded again all the same)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None, replay(messages, receive)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            return None, replay(messages, receive)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), replay(messages, receive)


class DirectHttp:
    """The `routes` (by path) answered without the stack; `app.direct_http`."""

    __slots__ = ("app", "cors", "max_body_bytes", "no_store", "routes", "templated")

    def __init__(
        self,
        app: Any,
        max_body_bytes: int,
        routes: Mapping[str, DirectRoute],
        templated: Sequence[TemplatedRoute] = (),
        *,
        cors: bool = True,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.routes = dict(routes)
        self.templated = tuple(templated)
        self.cors = cors  # the app answers CORS (its middleware is in the stack)
        # The paths whose route in the app is answered with `Cache-Control: no-store`
        paths = {*self.routes, *(route.template for route in self.templated)}
        self.no_store = {
            route.path
            for route in iter_route_contexts(app.routes)
            if route.path in paths
            and "POST" in (route.methods or ())
            and route_carries_credentials(route)
        }

    def match(self, scope: Scope) -> DirectRoute | None:
        if scope["method"] != "POST" or scope.get("root_path"):
            return None
        path = scope["path"]
        route = self.routes.get(path)
        if route is None:
            for templated in self.templated:
                if templated.matches(path):
                    return None if self.cors and _has_origin(scope) else templated
            return None
        return None if _has_origin(scope) else route

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, route: DirectRoute
    ) -> None:
        prepared, receive = await route.prepare(scope, receive, self.max_body_bytes)
        if prepared is STACK:
            await FastAPI.__call__(self.app, scope, receive, send)
            return
        request_id = begin_request(scope)
        label = getattr(route, "template", None) or scope["path"]
        no_store = label in self.no_store
        status = 500
        start = time.perf_counter()
        HTTP_IN_FLIGHT.inc()
        started = False

        async def answer(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                headers = message["headers"]
                if no_store:
                    headers = [h for h in headers if h[0] not in _NO_STORE_NAMES]
                    headers.extend(NO_STORE)
                message["headers"] = answer_headers(scope, headers, request_id)
            await send(message)

        try:
            if declared_too_large(scope, self.max_body_bytes):
                await send_too_large(answer)
                return
            with row_scope(NO_ROWS):
                request = Request(scope, limited_receive(receive, self.max_body_bytes))
                try:
                    reply = await route.answer(request, prepared)
                except Exception as exc:
                    handler = self._handler(exc)
                    if handler is not None:
                        await (await handler(request, exc))(scope, receive, answer)
                        return
                    # The last resort, as the stack's outermost layer: its answer (unless one
                    # has begun), without the request's headers, then the server hears of it.
                    last = self._last_resort()
                    if last is not None and not started:
                        await (await last(request, exc))(scope, receive, send)
                    raise
                headers = [*reply.headers, (b"content-length", str(len(reply.body)).encode())]
                await answer(
                    {"type": "http.response.start", "status": reply.status, "headers": headers}
                )
                await answer({"type": "http.response.body", "body": reply.body})
        finally:
            HTTP_IN_FLIGHT.dec()
            request_done("POST", label, status, time.perf_counter() - start)

    def _last_resort(self) -> Callable[[Request, Exception], Awaitable[Response]] | None:
        handlers = self.app.exception_handlers
        found: Callable[[Request, Exception], Awaitable[Response]] | None = handlers.get(
            500
        ) or handlers.get(Exception)
        return found

    def _handler(
        self, exc: Exception
    ) -> Callable[[Request, Exception], Awaitable[Response]] | None:
        """The app's handler for `exc` as Starlette's ExceptionMiddleware finds it (by status
        for an HTTPException, then by class); None for those of the last resort."""
        handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]]
        handlers = self.app.exception_handlers
        status = (
            getattr(exc, "status_code", None) if isinstance(exc, StarletteHTTPException) else None
        )
        if status is not None and status != 500 and status in handlers:
            return handlers[status]
        for kind in type(exc).__mro__:
            if kind is Exception:
                return None
            if kind in handlers:
                return handlers[kind]
        return None


def _has_origin(scope: Scope) -> bool:
    return any(name == b"origin" for name, _ in scope["headers"])


def content_type(media_type: str) -> bytes:
    """As Starlette's `Response` writes it."""
    if media_type.startswith("text/") and "charset=" not in media_type.lower():
        media_type += "; charset=utf-8"
    return media_type.encode("latin-1")
