"""The route class of every API router: FastAPI parses JSON bodies with `kit.jsonparse`.

FastAPI calls `request.json()`, which is the standard library's recursive parser: a deeply nested
body would end in RecursionError. `JsonRoute` hands each endpoint a request whose `json()` uses
the depth-limited parser, so such a body is an ordinary 400 `malformed_json`. Declare routers as
`APIRouter(..., route_class=JsonRoute)` (tests/test_routes.py checks every route of the app).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from bigfootlive.kit import jsonparse


class JsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = jsonparse.loads(await self.body())
        return self._json


class JsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            return await handler(JsonRequest(request.scope, request.receive))

        return handle
