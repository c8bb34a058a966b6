"""The HTTP rendering of errors: one JSON body `{"error": {"code", "message"}}` for every
failure (domain errors, validation, routing, database), installed on the app.
"""

from __future__ import annotations

from typing import Any

import structlog
from coredis.exceptions import ConnectionError as CoredisConnectionError
from coredis.exceptions import TimeoutError as CoredisTimeoutError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from redis.exceptions import ClusterDownError, SlotNotCoveredError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
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


# The database is (for now) unreachable: the connection was refused or dropped (class 08), the
# server is shutting down or starting up (57P01-57P03), or it has no connection slot left.
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300", "53400"})
# The database is up but the request lost a race: a lock it waited out (lock_timeout), a
# serialization failure, a deadlock, a statement timeout. A retry usually goes through.
_BUSY_SQLSTATES = frozenset({"55P03", "40001", "40P01", "57014"})
RETRY_AFTER_SECONDS = 1


def _sqlstate(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None)):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str):
            return state
    return ""


def _raised_in(exc: BaseException, *packages: str) -> bool:
    """Whether `exc` (or what it was raised from) was raised inside one of `packages`."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        tb = current.__traceback__
        while tb is not None:
            module = str(tb.tb_frame.f_globals.get("__name__", ""))
            if module.split(".")[0] in packages:
                return True
            tb = tb.tb_next
        current = current.__cause__ or current.__context__
    return False


# A Redis Cluster with a master down (CLUSTERDOWN, its slots uncovered) or mid-resharding.
_CLUSTER_UNAVAILABLE = (ClusterDownError, SlotNotCoveredError, TryAgainError)


def unavailable(exc: BaseException) -> tuple[str, str] | None:
    """(code, message) of a 503 when `exc` means a dependency is unreachable or busy for now
    (retrying shortly will do), else None."""
    # coredis: the Redis client of the rate limits (`limits` on a redis:// URL)
    cache_errors = (RedisConnectionError, RedisTimeoutError, *_CLUSTER_UNAVAILABLE)
    if isinstance(exc, (*cache_errors, CoredisConnectionError, CoredisTimeoutError)):
        return "cache_unavailable", "The cache is unavailable; retry shortly"
    if isinstance(exc, DBAPIError):
        state = _sqlstate(exc)
        if _is_sqlite_busy(exc) or state in _BUSY_SQLSTATES:
            return "database_busy", "The database is busy; retry shortly"
        if exc.connection_invalidated or state.startswith("08") or state in _UNAVAILABLE_SQLSTATES:
            return "database_unavailable", "The database is unavailable; retry shortly"
        if isinstance(exc, OperationalError) and _raised_in(exc, "asyncpg"):
            return "database_unavailable", "The database is unavailable; retry shortly"
        return None
    if isinstance(exc, PoolTimeoutError):  # every pooled connection is busy
        return "database_busy", "The database is busy; retry shortly"
    if isinstance(exc, OSError | TimeoutError):
        # A connection refused or reset while connecting (not every driver wraps these).
        if _raised_in(exc, "asyncpg", "sqlalchemy", "aiosqlite"):
            return "database_unavailable", "The database is unavailable; retry shortly"
        if _raised_in(exc, "redis", "coredis"):  # e.g. a broken pipe to a Redis that died
            return "cache_unavailable", "The cache is unavailable; retry shortly"
    return None


def unavailable_response(exc: BaseException) -> JSONResponse | None:
    found = unavailable(exc)
    if found is None:
        return None
    code, message = found
    log.warning("dependency_unavailable", code=code, exc_type=type(exc).__name__)
    return JSONResponse(
        error_body(code, message),
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
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
    errors = error.get("errors")
    if (
        answer.status_code == 422
        and request.method in ("GET", "HEAD")  # a link followed; a form's post keeps its 422
        and isinstance(errors, list)
        and errors
        and all(isinstance(e, dict) and e.get("loc", [])[:1] == ["path"] for e in errors)
    ):
        # /watch/not-an-id: the address names no page ("Check the form" would puzzle)
        return error_page(request, 404, "not_found", "There is no page at this address")
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
        # Also reached by what a middleware raises (the rate limiter's Redis, ...).
        if (response := unavailable_response(exc)) is not None:
            return response
        log.exception("unhandled_error", exc_type=type(exc).__name__)
        return JSONResponse(
            error_body("internal_error", "Something went wrong on our side"), status_code=500
        )

    async def _dependency(request: Request, exc: Exception) -> JSONResponse:
        return unavailable_response(exc) or await _unexpected(request, exc)

    for kind in (
        RedisConnectionError,
        RedisTimeoutError,
        *_CLUSTER_UNAVAILABLE,
        PoolTimeoutError,
        ConnectionError,
    ):
        app.add_exception_handler(kind, _dependency)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        if getattr(exc.orig, "sqlstate", None) in _UNSTORABLE_TEXT_SQLSTATES:
            return JSONResponse(
                error_body("invalid_characters", "Text must not contain NUL characters"),
                status_code=422,
            )
        if (response := unavailable_response(exc)) is not None:
            # A pooled connection the server dropped (restart, failover, idle kill) is
            # invalidated: the pool replaces its connections, so a retry goes through.
            return response
        return await _unexpected(request, exc)
