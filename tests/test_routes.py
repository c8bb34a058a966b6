"""Every route of the app, walked: FastAPI parses every JSON body with the depth-limited parser
(`bigfootlive.routing.JsonRoute`)."""

from __future__ import annotations

from fastapi.routing import APIRoute, iter_route_contexts

from bigfootlive.routing import JsonRoute


def test_every_api_route_parses_json_with_the_depth_limited_parser(app) -> None:
    plain = [
        r.path_format
        for r in iter_route_contexts(app.routes)
        if isinstance(r.original_route, APIRoute) and not isinstance(r.original_route, JsonRoute)
    ]
    assert plain == [], "declare these routers with route_class=JsonRoute"
