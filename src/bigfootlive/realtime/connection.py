"""One viewer socket as the hub sees it (`Connection`), the room of an event it is in, and the
frames it is sent.

A frame is built once and shared by every connection it goes to (`OutFrame`). Each connection has
a bounded queue drained by its own writer task (or, on the fast path, a bound on the bytes its
transport holds): a connection over its bound is cut off (close 4409) instead of growing memory
or delaying anyone else. `CaptureRawSend` and `fast_path_transport` find the transport the fast
path writes to.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import structlog

from bigfootlive.realtime import protocol as p

log = structlog.get_logger(__name__)

Sender = Callable[[str], Awaitable[None]]

# Bytes a fast-path connection may have pending in its transport per queued frame allowed.
_BYTES_PER_QUEUED_FRAME = 4096


def text_frame(payload: bytes) -> bytes:
    """A complete unmasked, uncompressed WebSocket text frame (server -> client)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


class OutFrame:
    """One outgoing frame, built once and shared by every connection it goes to: the JSON
    text for the ASGI path, and the whole wire frame for the fast path."""

    __slots__ = ("_text", "_wire", "payload")

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self._text: str | None = None
        self._wire: bytes | None = None

    @classmethod
    def of(cls, text: str) -> OutFrame:
        frame = cls(text.encode())
        frame._text = text
        return frame

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self.payload.decode()
        return self._text

    @property
    def wire(self) -> bytes:
        if self._wire is None:
            self._wire = text_frame(self.payload)
        return self._wire


Closer = Callable[[int, str], Awaitable[None]]


class Connection:
    """One viewer socket as the hub sees it: a bounded queue and a writer task, or, on the fast
    path, the socket's transport itself with a bound on its buffered bytes.

    Fast path: when the server is uvicorn's websockets-sansio protocol and the client negotiated
    no extension (no per-message compression), a server frame is the same bytes for every
    client, so the hub writes the shared, pre-framed bytes straight to each transport: no
    per-connection task, copy or framing. A transport holding more than its bound is cut off.
    """

    __slots__ = (
        "_closer",
        "_max_buffer",
        "_queue",
        "_sender",
        "_writer",
        "close_code",
        "event_id",
        "host",
        "id",
        "last_seen",
        "room",
        "seen",
        "transport",
        "user_id",
    )

    def __init__(
        self,
        event_id: uuid.UUID,
        user_id: uuid.UUID | None,
        sender: Sender,
        closer: Closer,
        queue_size: int,
        transport: asyncio.WriteTransport | None = None,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.event_id = event_id
        self.user_id = user_id
        self._sender = sender
        self._closer = closer
        # The queue and its writer exist only off the fast path (memory per viewer).
        self._queue: asyncio.Queue[str] | None = None
        self._writer: asyncio.Task[None] | None = None
        self.close_code: int | None = None
        # The event's own streamer (the studio's chat): in the room, not among its viewers.
        self.host = False
        self.last_seen = time.monotonic()
        self.room: Room | None = None
        # The room's chat messages before this one are sent or were before it joined (Room).
        self.seen = 0
        self.transport = transport
        self._max_buffer = queue_size * _BYTES_PER_QUEUED_FRAME

    def start(self) -> None:
        if self.transport is not None:
            return
        if self._queue is None:
            self._queue = asyncio.Queue(maxsize=self._max_buffer // _BYTES_PER_QUEUED_FRAME)
        self._writer = asyncio.create_task(self._write(), name=f"ws-writer-{self.id}")

    @property
    def closing(self) -> bool:
        return self.close_code is not None

    def offer(self, frame: OutFrame) -> bool:
        """Queue a frame; a full queue cuts the connection off. Never blocks."""
        if self.close_code is not None:
            return False
        transport = self.transport
        if transport is not None:
            if transport.is_closing():
                return False
            if transport.get_write_buffer_size() > self._max_buffer:
                log.info("ws_slow_consumer", connection=self.id, event_id=str(self.event_id))
                self.shut(p.CloseCode.SLOW_CONSUMER, "slow consumer")
                return False
            transport.write(frame.wire)
            return True
        if self._queue is None:
            self._queue = asyncio.Queue(maxsize=self._max_buffer // _BYTES_PER_QUEUED_FRAME)
        try:
            self._queue.put_nowait(frame.text)
        except asyncio.QueueFull:
            log.info("ws_slow_consumer", connection=self.id, event_id=str(self.event_id))
            self.shut(p.CloseCode.SLOW_CONSUMER, "slow consumer")
            return False
        return True

    async def _write(self) -> None:
        queue, sender = self._queue, self._sender
        if queue is None:
            return
        try:
            while True:
                frame = await queue.get()
                await sender(frame)
        except asyncio.CancelledError:
            raise
        except Exception:  # the socket went away; the reader notices and leaves
            return

    def shut(self, code: int, reason: str) -> None:
        """Close with `code` (once); pending frames are dropped."""
        if self.close_code is not None:
            return
        self.close_code = code
        if self._writer is not None:
            self._writer.cancel()
        # Out of the room at once: no more frames, and no longer counted as a viewer.
        if self.room is not None:
            if self.room.connections.pop(self.id, None) is not None:
                self.room.changes += 1
        task = asyncio.create_task(self._close(code, reason))
        BACKGROUND.add(task)
        task.add_done_callback(BACKGROUND.discard)

    async def _close(self, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(self._closer(code, reason), timeout=5.0)
        except Exception:  # a peer that reads nothing cannot take a close frame either
            if self.transport is not None:
                self.transport.abort()

    async def stop(self) -> None:
        """Stop the writer (the socket is already gone)."""
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer


# Sockets written per turn of the event loop. A broadcast to thousands of local viewers yields
# between slices, so this process's chat sends, acks and database replies wait for one slice,
# not for the whole fan-out (at 10k viewers, ack p99 76 ms with 128 against 112 ms with 512).
# One room sends one frame at a time, so each viewer gets frames in order.
SLICE = 128


def deliver(
    frame: OutFrame,
    targets: list[Connection],
    start: int,
    done: Callable[[float], None] | None,
    spent: float = 0.0,
) -> None:
    """Offer `frame` to `targets` from `start`, a slice a turn of the event loop; then call
    `done` with the seconds the slices themselves took (the broadcast's cost, without the
    turns between them).

    The loop is the fast path's own `offer` written out (the same checks, in the same order):
    at 10k viewers it runs 200,000 times a second, and a method call per socket was a tenth of
    the server's Python time; a socket off the fast path, closing or over its bound goes through
    `offer` (queue, cut-off)."""
    began = time.perf_counter()
    end = start + SLICE
    wire = frame.wire
    for connection in targets[start:end]:
        transport = connection.transport
        if (
            transport is None
            or connection.close_code is not None
            or transport.is_closing()
            or transport.get_write_buffer_size() > connection._max_buffer
        ):
            connection.offer(frame)
        else:
            transport.write(wire)
    spent += time.perf_counter() - began
    if end < len(targets):
        asyncio.get_running_loop().call_soon(deliver, frame, targets, end, done, spent)
    elif done is not None:
        done(spent)


def write_behind(
    connections: list[Connection], log: list[bytes], base: int, seq: int
) -> tuple[int, int]:
    """Send each of `connections` behind on the room's messages (`seen` < `seq`) every one it
    has not had, as one frame (a JSON array); those that are behind by as much share the
    frame. `log[0]` is message `base`. The written sockets, and the messages they were sent.

    The write is `deliver`'s (the fast path's `offer` written out; a socket off the fast path,
    closing or over its bound goes through `offer`)."""
    frames: dict[int, OutFrame] = {}
    written = messages = 0
    for connection in connections:
        seen = connection.seen
        if seen >= seq:
            continue
        frame = frames.get(seen)
        if frame is None:
            frame = frames[seen] = OutFrame(b"[" + b",".join(log[seen - base :]) + b"]")
        connection.seen = seq
        written += 1
        messages += seq - seen
        transport = connection.transport
        if (
            transport is None
            or connection.close_code is not None
            or transport.is_closing()
            or transport.get_write_buffer_size() > connection._max_buffer
        ):
            connection.offer(frame)
        else:
            transport.write(frame.wire)
    return written, messages


# Closes in flight (`Connection.shut`); the hub waits for them when it shuts down.
BACKGROUND: set[asyncio.Task[Any]] = set()


@dataclass(eq=False)
class Room:
    """The local connections to one event, and the chat messages the hub is sending them.

    The room's messages are numbered in the order they came; `log` holds those some socket may
    not have had yet (`log[0]` is number `log_base`), and each socket knows the number of the
    first it has not had (`Connection.seen`). The hub walks round the sockets, a slice a turn
    of the event loop (`Hub._walk`), sending each socket behind everything it has not had, in
    one frame: each socket gets the messages in order, each once."""

    event_id: uuid.UUID
    connections: dict[str, Connection] = field(default_factory=dict)
    hosts: int = 0  # connections of the event's streamer: not counted as viewers
    log: list[bytes] = field(default_factory=list)
    log_base: int = 0
    arrived: list[float] = field(default_factory=list)  # when each of `log` came (monotonic)
    walking: bool = False  # a walk is under way (`Hub._walk` runs or is scheduled)
    changes: int = 0  # joins and leaves so far
    ring: list[Connection] = field(default_factory=list)  # the sockets the walk goes round
    ring_changes: int = -1  # `changes` when `ring` was taken
    ring_at: float = float("-inf")  # loop time `ring` was taken
    at: int = 0  # where the walk is in `ring`
    slice_runs: list[float] = field(default_factory=list)  # loop time each slice was last sent
    slice_seen: list[int] = field(default_factory=list)  # the first message each slice lacks
    cost: float = 0.0  # seconds a frame to every socket takes, smoothed (hub.Hub.window)
    unsubscribes: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    reactions: Counter[str] = field(default_factory=Counter)

    @property
    def viewers(self) -> int:
        return len(self.connections) - self.hosts


RAW_SEND_KEY = "bigfootlive.raw_send"


# A socket handler reached without the HTTP stack: (scope, receive, send, rest of the path).
DirectSocket = Callable[[Any, Any, Any, str], Awaitable[None]]


class DirectSockets:
    """The socket paths served without the HTTP stack: `prefix` followed by one path segment,
    each with its handler. uvicorn's protocol (serving.LeanWebSocketProtocol) calls this for a
    matched socket at once; `CaptureRawSend` does under other servers.

    A socket lives as long as its viewer watches, and each layer of the stack keeps a coroutine
    frame (and FastAPI its exit stacks) per socket: at 10k viewers they were a third of the
    memory per socket and a large part of each connect's CPU. The layers add nothing to a
    WebSocket (no body, no HTTP headers; the request id is bound here as the request context
    middleware would).
    """

    __slots__ = ("app", "routes")

    def __init__(self, app: Any, routes: dict[str, DirectSocket]) -> None:
        self.app = app
        self.routes = dict(routes)

    def match(self, path: str) -> tuple[DirectSocket, str] | None:
        for prefix, handler in self.routes.items():
            rest = path[len(prefix) :]
            if path.startswith(prefix) and rest and "/" not in rest:
                return handler, rest
        return None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        found = self.match(scope["path"]) if scope["type"] == "websocket" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        handler, rest = found
        scope["app"] = self.app
        scope[RAW_SEND_KEY] = send
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await handler(scope, receive, send, rest)
        except Exception:
            log.exception("ws_failed", path=scope["path"])
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": 1011})


class CaptureRawSend:
    """Outermost ASGI middleware: keeps the server's own `send` for WebSocket scopes, so the
    gateway can reach the socket's transport for the fast path (see `Connection`), and hands
    the paths of `direct` to their handlers without the middleware and routing layers below
    (what `LeanWebSocketProtocol` does before the app is called at all)."""

    def __init__(self, app: Any, direct: DirectSockets | None = None) -> None:
        self.app = app
        self.direct = direct

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            scope[RAW_SEND_KEY] = send
            if self.direct is not None and self.direct.match(scope["path"]) is not None:
                await self.direct(scope, receive, send)
                return
        await self.app(scope, receive, send)


def fast_path_transport(scope: Any) -> asyncio.WriteTransport | None:
    """The transport, when frames may be written to it directly: uvicorn's websockets-sansio
    protocol (or `LeanWebSocketProtocol`, which is one) with no extension negotiated. Otherwise
    None (frames go through ASGI)."""
    protocol = getattr(scope.get(RAW_SEND_KEY), "__self__", None)
    if not any(kind.__name__ == "WebSocketsSansIOProtocol" for kind in type(protocol).__mro__):
        return None
    connection = getattr(protocol, "conn", None)
    transport = getattr(protocol, "transport", None)
    if connection is None or getattr(connection, "extensions", None) != []:
        return None
    needed = ("write", "get_write_buffer_size", "is_closing", "abort")
    if transport is None or not all(hasattr(transport, name) for name in needed):
        return None
    return cast("asyncio.WriteTransport", transport)  # uvloop's transports do not subclass it
