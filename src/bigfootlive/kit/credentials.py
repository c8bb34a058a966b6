"""Responses that carry a credential are never stored by a cache (RFC 6749 §5.1, RFC 9111 §5.2).

A response body that carries a token, a secret or a key is a model deriving from `Credentials`.
Every route documented to answer with one (its response model, or a model of its `responses=`,
at any depth of nesting) is answered with `Cache-Control: no-store` and `Pragma: no-cache` by
`NoStoreMiddleware`, whatever the status. A route that returns a `Response` itself declares its
body model in `responses=` (the API reference needs it there anyway).
"""

from __future__ import annotations

from typing import get_args

from pydantic import BaseModel
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Credentials(BaseModel):
    """Base of the response models that carry a credential."""


def carries_credentials(annotation: object, _seen: set[type] | None = None) -> bool:
    """Whether `annotation` (a model, a union, a list, Annotated[...]) can hold `Credentials`."""
    seen = set() if _seen is None else _seen
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if issubclass(annotation, Credentials):
            return True
        if annotation in seen:
            return False
        seen.add(annotation)
        return any(
            carries_credentials(field.annotation, seen)
            for field in annotation.model_fields.values()
        )
    return any(carries_credentials(arg, seen) for arg in get_args(annotation))


def route_carries_credentials(route: object) -> bool:
    responses = getattr(route, "responses", None) or {}
    models = [getattr(route, "response_model", None)]
    models += [spec.get("model") for spec in responses.values() if isinstance(spec, dict)]
    return any(carries_credentials(model) for model in models if model is not None)


class NoStoreMiddleware:
    """Adds the no-store headers to the answers of routes that carry credentials."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._verdicts: dict[int, bool] = {}  # id(route) -> carries credentials

    def _no_store(self, route: object) -> bool:
        if route is None:
            return False
        verdict = self._verdicts.get(id(route))
        if verdict is None:
            verdict = self._verdicts[id(route)] = route_carries_credentials(route)
        return verdict

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            # The router has put the matched route in the scope by the time the answer starts.
            if message["type"] == "http.response.start" and self._no_store(scope.get("route")):
                headers = MutableHeaders(scope=message)
                headers["Cache-Control"] = "no-store"
                headers["Pragma"] = "no-cache"
            await send(message)

        await self.app(scope, receive, send_with_headers)
