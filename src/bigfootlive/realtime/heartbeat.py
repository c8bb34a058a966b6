"""The sockets' heartbeat: one loop per process for every local socket, instead of a task (and
its coroutine, timer and memory) per socket.

Every `min(WS_HEARTBEAT_SECONDS, WS_IDLE_TIMEOUT_SECONDS / 2)` each socket is looked at once: one
that sent nothing for `WS_IDLE_TIMEOUT_SECONDS` is closed (4410), the others get a ping (one
frame shared by all). The sockets are spread over the interval in turns of about a second
(`turns`): a ping is answered by a pong the server reads, parses and dispatches, and pinging
10k sockets of a process at once brought 10k pongs back within milliseconds, a burst of CPU that
held up the chat broadcasts behind it. Once an interval the loop also asks the revocation cache
about each signed-in socket's session: the hub closes a socket as soon as its revocation is
published, and this catches one it missed (published while the socket was opening, or lost in
transit).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

import structlog

from bigfootlive.realtime import protocol as p
from bigfootlive.realtime.connection import Connection, OutFrame, Room, deliver


class _SignedIn(Protocol):
    """A user's room: the user's sockets on this process, each with its session."""

    @property
    def sessions(self) -> Mapping[Connection, uuid.UUID]: ...


class Hub(Protocol):
    """What the heartbeat reads of the hub (`realtime.hub.Hub`)."""

    @property
    def heartbeat_seconds(self) -> float: ...
    @property
    def idle_timeout_seconds(self) -> float: ...
    @property
    def rooms(self) -> Mapping[uuid.UUID, Room]: ...
    @property
    def users(self) -> Mapping[uuid.UUID, _SignedIn]: ...
    @property
    def is_revoked(self) -> Callable[[uuid.UUID], Awaitable[bool]] | None: ...


log = structlog.get_logger(__name__)


# At most this many turns an interval, each at least TURN_SECONDS apart.
MAX_TURNS = 20
TURN_SECONDS = 1.0


def turns(interval: float) -> int:
    """How many turns the heartbeat interval is split into: one a second, up to MAX_TURNS."""
    return max(1, min(MAX_TURNS, int(interval / TURN_SECONDS)))


async def heartbeat_loop(hub: Hub) -> None:
    """Runs while the hub has rooms; the hub starts it again with the next socket."""
    interval = min(hub.heartbeat_seconds, hub.idle_timeout_seconds / 2)
    count = turns(interval)
    turn = 0
    while hub.rooms or hub.users:
        await asyncio.sleep(interval / count)
        try:
            beat(hub, turn, count)
            if turn == count - 1 and hub.is_revoked is not None:
                await _revocations(hub, hub.is_revoked)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("ws_heartbeat_failed")
        turn = (turn + 1) % count


def beat(hub: Hub, turn: int = 0, count: int = 1) -> None:
    """Close the idle sockets whose turn it is, ping the others. A socket's turn is fixed for
    its life (the hash of its random id), so it is looked at once every `count` turns."""
    now = time.monotonic()
    limit = hub.idle_timeout_seconds
    ping = OutFrame.of(p.encode(p.Ping()))
    for room in list(hub.rooms.values()):
        alive: list[Connection] = []
        for connection in list(room.connections.values()):
            if count > 1 and hash(connection.id) % count != turn:
                continue
            if now - connection.last_seen > limit:
                connection.shut(p.CloseCode.IDLE_TIMEOUT, "no heartbeat")
            else:
                alive.append(connection)
        if alive:
            deliver(ping, alive, 0, None)


async def _revocations(hub: Hub, is_revoked: Callable[[uuid.UUID], Awaitable[bool]]) -> None:
    for room in list(hub.users.values()):
        for connection, session_id in list(room.sessions.items()):
            if connection.closing:
                continue
            try:
                revoked = await is_revoked(session_id)
            except Exception:  # the cache is away: keep the socket, look again next time
                log.warning("ws_revocation_check_failed", exc_info=True)
                return
            if revoked:
                connection.shut(p.CloseCode.UNAUTHORIZED, "session revoked")
