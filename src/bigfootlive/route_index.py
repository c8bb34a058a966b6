"""Cheap routing: each included router is skipped at once when no route of its can match a path.

FastAPI (0.165) keeps each `include_router` as one `_IncludedRouter` and, per request, asks the
routers in turn, each asking every route of its: a request to a route of a late router paid every
earlier router's regex matches and scope bookkeeping (about 40 % of a repeated publish callback's
CPU, ~300 µs for a beacon). A route's path regex is anchored and starts with the literal text
before its first parameter, so a router whose routes are `exact` paths (no parameter) or start
with one of its `prefixes` cannot match any other path, neither fully nor partially (a path
matched with another method): `index_routes` gives each such router a `matches` that answers
`Match.NONE` for other paths without asking its routes, and the router's own answer otherwise.
The order of the routers, 405s, slash redirects (matched on the redirected path) and
low-priority routes are unchanged. A router holding anything else (a mount, a host route) is
left as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute, _IncludedRouter
from starlette._utils import get_route_path
from starlette.routing import Match, Route, WebSocketRoute
from starlette.types import Scope

_PLAIN = (APIRoute, APIWebSocketRoute, Route, WebSocketRoute)


@dataclass(frozen=True, slots=True)
class PathFilter:
    exact: frozenset[str]
    prefixes: tuple[str, ...]

    def admits(self, path: str) -> bool:
        return path in self.exact or path.startswith(self.prefixes)


def path_filter(router: _IncludedRouter) -> PathFilter | None:
    """What paths `router`'s routes can match; None when that cannot be told from their paths."""
    exact: set[str] = set()
    prefixes: set[str] = set()
    for context in router.effective_route_contexts():
        route = context.starlette_route or context.original_route
        path = getattr(route, "path_format", None)
        if not isinstance(route, _PLAIN) or not isinstance(path, str) or not path:
            return None
        head, brace, _ = path.partition("{")
        if brace:
            prefixes.add(head)
        else:
            exact.add(path)
    return PathFilter(frozenset(exact), tuple(sorted(prefixes)))


def _filtered(
    admits: Callable[[str], bool], matches: Callable[[Scope], tuple[Match, Scope]]
) -> Callable[[Scope], tuple[Match, Scope]]:
    def match(scope: Scope) -> tuple[Match, Scope]:
        if not admits(get_route_path(scope)):
            return Match.NONE, {}
        return matches(scope)

    return match


def index_routes(app: FastAPI) -> int:
    """Give every included router of `app` whose paths tell it a filtered `matches`; how many.
    Call once, after the last `include_router`."""
    indexed = 0
    for route in app.router.routes:
        if not isinstance(route, _IncludedRouter):
            continue
        found = path_filter(route)
        if found is None or "" in found.prefixes:
            continue
        # An instance attribute in front of the dataclass's method (FastAPI calls route.matches)
        instance: Any = route
        instance.matches = _filtered(found.admits, route.matches)
        indexed += 1
    return indexed
