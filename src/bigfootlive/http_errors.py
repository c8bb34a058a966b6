"""The HTTP rendering of errors: one JSON body `{"error": {"code", "message"}}` for every
failure (domain errors, validation, routing, database), installed on the app.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from bigfootlive.errors import BigfootError, error_body
from bigfootlive.kit import jsonparse
from bigfootlive.web.render import error_page, wants_page

log = structlog.get_logger(__name__)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


# PostgreSQL refuses text it cannot store (a NUL character, which SQLite happily keeps). That is
# always the client's input, in a body or a query parameter, so it gets a 422 and not a 500.
_UNSTORABLE_TEXT_SQLSTATES = frozenset({"22021", "22P05"})

# SQLite has one writer at a time; a write that waited out the busy timeout for it fails with
# "database is locked" (or "... table is locked"). Nothing is wrong with the request: retry.
_SQLITE_BUSY_MESSAGES = ("database is locked", "database table is locked")


def _is_sqlite_busy(exc: DBAPIError) -> bool:
    return isinstance(exc, OperationalError) and any(
        text in str(exc.orig) for text in _SQLITE_BUSY_MESSAGES
    )


def _jsonable_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        out.append(
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
        )
    return out


def _too_deep() -> JSONResponse:
    return JSONResponse(
        error_body("malformed_json", "The request body is nested too deeply"), status_code=400
    )


def _method_not_allowed(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """405 naming every method the path answers to: the router's own `Allow` lists only the
    methods of the first route whose path matched, and a path often has one route per method."""
    path = request.scope["path"]
    allowed: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        regex = getattr(route, "path_regex", None)
        if route.methods and regex is not None and regex.match(path):
            allowed |= route.methods
    headers = dict(exc.headers or {})
    if allowed:
        headers["Allow"] = ", ".join(sorted(allowed))
    return JSONResponse(
        error_body("method_not_allowed", "Method not allowed", allowed=sorted(allowed)),
        status_code=405,
        headers=headers,
    )


def _as_page(request: Request, answer: Response) -> Response:
    """A browser navigating to a page gets the error as a page; everyone else the JSON."""
    if not wants_page(request) or not isinstance(answer, JSONResponse):
        return answer
    error = jsonparse.loads(bytes(answer.body)).get("error", {})
    headers = {k: v for k, v in answer.headers.items() if k.lower() in ("allow", "retry-after")}
    return error_page(
        request,
        answer.status_code,
        str(error.get("code", "error")),
        str(error.get("message", "")),
        headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    _install_json_handlers(app)
    for key, handler in list(app.exception_handlers.items()):

        def paged(handler: Any = handler) -> Any:
            async def handle(request: Request, exc: Exception) -> Response:
                return _as_page(request, await handler(request, exc))

            return handle

        app.exception_handlers[key] = paged()


def _install_json_handlers(app: FastAPI) -> None:
    @app.exception_handler(BigfootError)
    async def _domain(_: Request, exc: BigfootError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, **exc.details),
            status_code=exc.status_code,
            headers=exc.headers or None,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _jsonable_errors(exc)
        if any(e["type"] == "json_invalid" for e in errors):
            return JSONResponse(
                error_body("malformed_json", "The request body is not valid JSON", errors=errors),
                status_code=400,
            )
        return JSONResponse(
            error_body("validation_error", "The request is not valid", errors=errors),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, RecursionError):  # FastAPI's "error parsing the body"
            return _too_deep()
        if exc.status_code == 405:
            return _method_not_allowed(request, exc)
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return JSONResponse(
            error_body(code, message), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RecursionError)
    async def _recursion(_: Request, exc: RecursionError) -> JSONResponse:
        # Input nested deeper than our parsers allow is refused by them (kit.jsonparse); this
        # catches any other parser that recurses per level, and keeps the trace for a bug.
        log.warning("recursion_error", exc_info=exc)
        return _too_deep()

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", exc_type=type(exc).__name__)
        return JSONResponse(
            error_body("internal_error", "Something went wrong on our side"), status_code=500
        )

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        if getattr(exc.orig, "sqlstate", None) in _UNSTORABLE_TEXT_SQLSTATES:
            return JSONResponse(
                error_body("invalid_characters", "Text must not contain NUL characters"),
                status_code=422,
            )
        if _is_sqlite_busy(exc):
            log.warning("database_busy", exc_type=type(exc.orig).__name__)
            return JSONResponse(
                error_body("database_busy", "The database is busy; retry shortly"),
                status_code=503,
                headers={"Retry-After": "1"},
            )
        if exc.connection_invalidated:
            # The database dropped this pooled connection (restart, failover, idle kill); the
            # pool has replaced its connections, so a retry goes through.
            log.warning("database_connection_lost", exc_type=type(exc.orig).__name__)
            return JSONResponse(
                error_body("database_unavailable", "The database connection was lost; retry"),
                status_code=503,
                headers={"Retry-After": "1"},
            )
        return await _unexpected(request, exc)
