"""How BigfootLive runs under uvicorn: one set of options for `bigfootlive serve`, and for the
benchmarks and tests that start a real server, so what is measured and tested is what runs.

`LeanWebSocketProtocol` is uvicorn's websockets-sansio protocol with less kept per open socket
(docs/realtime.md, "Memory per viewer"): an open viewer socket lives for as long as its viewer
watches, so what each one keeps, times tens of thousands, is most of a process's memory.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast
from urllib.parse import unquote

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

# `app.state.<DIRECT_SOCKETS>`: an ASGI app with `match(path)` for the socket paths served
# without the HTTP stack (realtime.connection.DirectSockets).
DIRECT_SOCKETS = "direct_sockets"


def uvicorn_options(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config` (overrides win)."""
    options: dict[str, Any] = {
        "loop": "uvloop",
        # httptools, with nothing left for the garbage collector when a socket upgrades.
        "http": f"{__name__}:LeanHttpToolsProtocol",
        # uvicorn's websockets-sansio (write back-pressure, which slow-consumer cut-off needs),
        # lighter per open socket: LeanWebSocketProtocol below.
        "ws": f"{__name__}:LeanWebSocketProtocol",
        # Uncompressed frames are the same bytes for every viewer: the hub's fast path writes
        # one pre-built frame to every socket (realtime/connection.py).
        "ws_per_message_deflate": False,
        # No protocol-level pings from uvicorn: the hub's heartbeat pings every socket with one
        # shared frame and closes the silent ones (WS_IDLE_TIMEOUT_SECONDS); uvicorn's own kept
        # a timer per socket and answered tens of thousands of pongs a minute at 10k viewers.
        "ws_ping_interval": None,
        "proxy_headers": False,  # TRUSTED_PROXIES decides whose X-Forwarded-For is believed
        "server_header": False,  # no `Server: uvicorn`: do not advertise the stack
        # Our middleware writes the access line (route template, request id, no query string).
        "access_log": False,
        # Logging is ours (observability/logging.py: JSON lines, credentials redacted). uvicorn's
        # own configuration would print its lines, WebSocket URLs and their query strings
        # included, through handlers of its own.
        "log_config": None,
        "lifespan": "on",
    }
    options.update(overrides)
    return options


class LeanHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, which lets go of itself when its connection becomes a
    WebSocket. The HTTP protocol object and its parser refer to each other (the parser calls the
    protocol's bound methods), so after an upgrade hands the transport to the WebSocket protocol
    they were garbage only the cyclic collector frees: about 22 objects a socket, 22,000 for
    1,000 viewers connecting, each collection of the young generation walking them. Dropping the
    parser and the flow control after the upgrade breaks the cycle: reference counting frees
    them at once."""

    def handle_websocket_upgrade(self) -> None:
        super().handle_websocket_upgrade()
        # The transport now feeds the WebSocket protocol; nothing here is called again.
        self.parser = None  # type: ignore[assignment]
        self.flow = None  # type: ignore[assignment]


class _Inbox:
    """The received ASGI events of one socket, for its one reader: what uvicorn's
    `asyncio.Queue` does here, without its three deques and its Event (about 3 KB a socket)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> Any:
        while not self._items:
            waiter = self._waiter
            if waiter is None or waiter.done():
                waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None
        return self._items.pop(0)


class _Writable:
    """Whether the transport takes more bytes (uvicorn's `asyncio.Event`, without its deque):
    set, clear, wait."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol (the same behaviour, frames and back-pressure) with
    less kept per open socket. Measured with tracemalloc over 2,000 anonymous viewers, uvicorn's
    protocol kept about 13 KB of a viewer's 23.5 KB; here:

    - the received events wait in a list with one waiter, and "writable" is a flag with a list
      of waiters, instead of an `asyncio.Queue` and an `asyncio.Event` (four deques of 760 bytes);
    - the handshake's request and response headers are let go once the socket is accepted
      (websockets' parser keeps the request object for the socket's life);
    - a socket path the app serves without the HTTP stack (`app.state.direct_sockets`) is
      handed to that handler directly, without the frames of FastAPI, Starlette and their
      middleware, each kept for the socket's life.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = cast("asyncio.Queue[Any]", _Inbox())
        self.writable = cast("asyncio.Event", _Writable())

    def handle_connect(self, event: Request) -> None:
        direct = getattr(getattr(self.app, "state", None), DIRECT_SOCKETS, None)
        if direct is not None and direct.match(unquote(event.path.partition("?")[0])):
            self.app = direct  # this socket's handler (the task run_asgi starts calls it)
        super().handle_connect(event)

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            request, response = getattr(self, "request", None), getattr(self, "response", None)
            for headers in (getattr(request, "headers", None), getattr(response, "headers", None)):
                if headers is not None:
                    headers.clear()
            self.request = self.response = None  # type: ignore[assignment]

    async def run_asgi(self) -> None:
        try:
            await super().run_asgi()
        finally:
            # The app is done with the socket. Its scope holds this protocol's bound `send`
            # (realtime's raw send, for the fast path), and this protocol the scope: a cycle
            # that kept each closed socket (~32 objects, its transport, its parser) until a
            # collection of an older generation, which is rare (app.GC_THRESHOLDS).
            self.scope = None  # type: ignore[assignment]
