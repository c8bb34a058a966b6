"""`bigfootlive.route_index`: a router skipped for a path answers exactly what it would have
answered had it been asked (every route's path, with and without a trailing slash, paths of no
route, HTTP and WebSocket), and the app's routers are indexed (the filter is in use)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import _IncludedRouter

from bigfootlive.route_index import path_filter
from tests.test_routes import _paths

STRAY = ("/", "/api", "/api/", "/nothing", "/api/nothing", "/static", "/watch", "/admin/x/y/z")


def _scope(kind: str, path: str, method: str) -> dict[str, object]:
    scope: dict[str, object] = {
        "type": kind, "path": path, "root_path": "", "query_string": b"", "headers": [],
    }  # fmt: skip
    if kind == "http":
        scope["method"] = method
    return scope


def _routers(app: FastAPI) -> list[_IncludedRouter]:
    return [r for r in app.router.routes if isinstance(r, _IncludedRouter)]


def test_the_app_routers_are_indexed(app: FastAPI) -> None:
    routers = _routers(app)
    indexed = [r for r in routers if "matches" in vars(r)]
    assert len(routers) > 40
    assert len(indexed) == len(routers), [
        r.original_router.prefix for r in routers if r not in indexed
    ]


def test_a_skipped_router_answers_as_if_asked(app: FastAPI) -> None:
    paths = set(_paths(app)) | {f"/ws/events/{'0' * 8}-0000-0000-0000-{'0' * 12}"}
    paths |= {p.rstrip("/") if p.endswith("/") else p + "/" for p in paths} | set(STRAY)
    skipped = compared = 0
    for router in _routers(app):
        found = path_filter(router)
        assert found is not None
        for path in sorted(paths):
            for kind, method in (("http", "GET"), ("http", "POST"), ("websocket", "")):
                fast = router.matches(_scope(kind, path, method))
                full = _IncludedRouter.matches(router, _scope(kind, path, method))
                assert fast[0] == full[0], (router.original_router.prefix, kind, method, path)
                skipped += not found.admits(path)
                compared += 1
    # The filter must be doing the work: most (router, path) pairs are decided without asking
    assert skipped > compared * 0.8
