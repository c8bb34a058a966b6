"""`Cache-Control: no-store` on the answers of routes that carry credentials
(see `kit.credentials`)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bigfootlive.kit.credentials import route_carries_credentials

# The headers, as ASGI sends them (also `direct_http`'s, for the routes it answers).
NO_STORE = ((b"cache-control", b"no-store"), (b"pragma", b"no-cache"))


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
                for name, value in NO_STORE:
                    headers[name.decode()] = value.decode()
            await send(message)

        await self.app(scope, receive, send_with_headers)
