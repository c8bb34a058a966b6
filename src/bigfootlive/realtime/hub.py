"""The per-process fan-out hub: the rooms of the events with local viewers.

Each process subscribes ONCE per event that has local viewers (three channels: chat broadcasts,
gateway control, and the events domain's `event:{id}:state`). A broadcast arrives as bytes that
were serialized once by the publisher; the hub walks round the room's local connections in
slices that give the event loop back between them, sending each connection of a slice every
message it has not had as one frame (a JSON array), built once for all those that lack the same
ones (`Hub._walk`, `connection.write_behind`); a slice gets a frame at most once a window.
Each connection is cut off when it falls behind (connection.py); presence and reactions run as
loops (presence.py), the sockets' pings and idle cut-off as one loop (heartbeat.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from pydantic import ValidationError

from bigfootlive.events.schemas import EventStatus, StateChange
from bigfootlive.events.wire import state_channel
from bigfootlive.identity import revocation
from bigfootlive.kit import jsonparse
from bigfootlive.kit.backends import Cache, PubSub
from bigfootlive.observability import metrics
from bigfootlive.realtime import protocol as p
from bigfootlive.realtime.admission import Admissions
from bigfootlive.realtime.connection import (
    BACKGROUND,
    SLICE,
    Connection,
    OutFrame,
    Room,
    deliver,
    write_behind,
)
from bigfootlive.realtime.heartbeat import heartbeat_loop
from bigfootlive.realtime.presence import Presence, presence_loop, reactions_loop

log = structlog.get_logger(__name__)

_LIVE_HUBS: weakref.WeakSet[Hub] = weakref.WeakSet()
# How a chat message's broadcast starts (pydantic writes `type` first, with no spaces): every
# other broadcast (room settings, pin, delete, moderation) drops the event's admission snapshot.
_PLAIN_MESSAGE = b'{"type":"message"'
# The share of the event loop one room's fan-out may take when messages come faster than it
# sends them (`Hub.window`): the rest is left to the sends, acks and database replies.
FANOUT_SHARE = 0.5


@dataclass(eq=False)
class UserRoom:
    """A signed-in user's sockets in this process, each with its session, while there is one."""

    user_id: uuid.UUID
    sessions: dict[Connection, uuid.UUID] = field(default_factory=dict)
    unsubscribe: Callable[[], Awaitable[None]] | None = None


class Hub:
    def __init__(
        self,
        pubsub: PubSub,
        cache: Cache,
        *,
        queue_size: int,
        batch_window: float,
        presence_interval: float,
        admission_ttl: float = 5.0,
        heartbeat_seconds: float = 20.0,
        idle_timeout_seconds: float = 60.0,
    ) -> None:
        self.pubsub = pubsub
        self.cache = cache
        self.queue_size = queue_size
        self.batch_window = batch_window
        self.rooms: dict[uuid.UUID, Room] = {}
        self.presence = Presence(cache, presence_interval)
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self.shutting_down = False
        self.users: dict[uuid.UUID, UserRoom] = {}
        self._users_lock = asyncio.Lock()
        self._revocations: Callable[[], Awaitable[None]] | None = None
        self.admissions = Admissions(pubsub, admission_ttl)
        self.heartbeat_seconds = heartbeat_seconds
        self.idle_timeout_seconds = idle_timeout_seconds
        # Whether a signed-in socket's session was revoked (set by the composition root).
        self.is_revoked: Callable[[uuid.UUID], Awaitable[bool]] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        _LIVE_HUBS.add(self)

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(presence_loop(self), name="presence-heartbeat"),
            asyncio.create_task(reactions_loop(self), name="reactions-aggregator"),
        ]

    async def close(self, code: int = p.CloseCode.SHUTTING_DOWN) -> None:
        """Close every local connection with `code`, stop the loops, drop subscriptions."""
        await self.shutdown_connections(code)
        heartbeat, self._heartbeat = self._heartbeat, None
        for task in [*self._tasks, *([heartbeat] if heartbeat is not None else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for room in list(self.rooms.values()):
            with contextlib.suppress(Exception):
                await self.presence.forget(room.event_id)
            for unsubscribe in room.unsubscribes:
                with contextlib.suppress(Exception):
                    await unsubscribe()
        self.rooms.clear()
        await self._close_users()
        await self.admissions.close()

    async def shutdown_connections(self, code: int = p.CloseCode.SHUTTING_DOWN) -> None:
        self.shutting_down = True
        connections = [c for room in self.rooms.values() for c in room.connections.values()]
        for connection in connections:
            connection.shut(code, "server shutting down")
        pending = list(BACKGROUND)
        if pending:
            await asyncio.wait(pending, timeout=3.0)

    # --- membership ----------------------------------------------------------------------------

    async def join(self, connection: Connection) -> Room:
        async with self._lock:
            room = self.rooms.get(connection.event_id)
            if room is None:
                room = self.rooms[connection.event_id] = Room(connection.event_id)
                await self._subscribe(room)
                # What was admitted before the subscription may have missed a change.
                self.admissions.invalidate(connection.event_id)
            if connection.id not in room.connections:
                metrics.WS_CONNECTIONS.inc()
                room.hosts += connection.host
                connection.seen = room.log_base + len(room.log)  # the messages from now on
            room.changes += 1
            room.connections[connection.id] = connection
            connection.room = room
        connection.start()
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(heartbeat_loop(self), name="ws-heartbeat")
        return room

    async def leave(self, connection: Connection) -> None:
        await connection.stop()
        async with self._lock:
            room = self.rooms.get(connection.event_id)
            if room is None or room is not connection.room:
                return
            if room.connections.pop(connection.id, None) is not None:
                room.changes += 1
                metrics.WS_CONNECTIONS.dec()
                room.hosts -= connection.host
            connection.room = None
            if not room.walking:
                _let_ring_go(room)
            if room.connections:
                return
            del self.rooms[room.event_id]
            self.admissions.invalidate(room.event_id)  # nothing tells it of changes any more
            for unsubscribe in room.unsubscribes:
                with contextlib.suppress(Exception):
                    await unsubscribe()
        await self.presence.forget(room.event_id)

    async def _subscribe(self, room: Room) -> None:
        # Imported here: the hub is built with the app state, which events.lifecycle imports.
        event_id = room.event_id

        async def on_chat(data: bytes) -> None:
            if not data.startswith(_PLAIN_MESSAGE):
                self.admissions.invalidate(event_id)  # the room's settings or pin may change
            self._enqueue(room, data)

        async def on_control(data: bytes) -> None:
            self._control(room, data)

        async def on_state(data: bytes) -> None:
            self.admissions.invalidate(event_id)
            system = _system_message(data)
            if system is not None:
                self._enqueue(room, system.model_dump_json().encode())

        room.unsubscribes = [
            await self.pubsub.subscribe(p.chat_channel(event_id), on_chat),
            await self.pubsub.subscribe(p.control_channel(event_id), on_control),
            await self.pubsub.subscribe(state_channel(event_id), on_state),
        ]

    # --- per-user delivery ---------------------------------------------------------------------
    # Like the event rooms: `user:{id}` is subscribed while the user has a socket here.

    async def join_user(self, connection: Connection, session_id: uuid.UUID) -> None:
        """Deliver the signed-in user's own messages (notifications) to this socket too, and
        close it (4401) as soon as its session is revoked."""
        user_id = connection.user_id
        if user_id is None:
            return
        async with self._users_lock:
            if self._revocations is None:
                self._revocations = await self.pubsub.subscribe(
                    revocation.CHANNEL, self._on_session_revoked
                )
            room = self.users.get(user_id)
            if room is None:
                room = UserRoom(user_id)
                room.unsubscribe = await self.pubsub.subscribe(
                    p.user_channel(user_id), functools.partial(self._on_user_message, room)
                )
                self.users[user_id] = room
            room.sessions[connection] = session_id

    async def leave_user(self, connection: Connection) -> None:
        async with self._users_lock:
            room = None if connection.user_id is None else self.users.get(connection.user_id)
            if room is None or room.sessions.pop(connection, None) is None or room.sessions:
                return
            del self.users[room.user_id]
            if room.unsubscribe is not None:
                with contextlib.suppress(Exception):
                    await room.unsubscribe()

    async def _on_user_message(self, room: UserRoom, data: bytes) -> None:
        try:
            message = p.user_message.validate_json(data)
        except ValidationError:
            log.warning("bad_user_message", user_id=str(room.user_id))
            return
        frame = OutFrame.of(p.encode(message))
        for connection in list(room.sessions):
            connection.offer(frame)

    async def _on_session_revoked(self, data: bytes) -> None:
        try:
            revoked = revocation.SessionRevoked.model_validate_json(data)
        except ValidationError:
            log.warning("bad_revocation_message")
            return
        room = self.users.get(revoked.user_id)
        if room is None:
            return
        for connection, session_id in list(room.sessions.items()):
            if session_id == revoked.session_id:
                connection.shut(p.CloseCode.UNAUTHORIZED, "session revoked")

    async def _close_users(self) -> None:
        async with self._users_lock:
            if self._revocations is not None:
                with contextlib.suppress(Exception):
                    await self._revocations()
                self._revocations = None
            rooms, self.users = list(self.users.values()), {}
            for room in rooms:
                if room.unsubscribe is not None:
                    with contextlib.suppress(Exception):
                        await room.unsubscribe()

    # --- fan-out -------------------------------------------------------------------------------

    def _enqueue(self, room: Room, data: bytes) -> None:
        room.log.append(data)
        room.arrived.append(time.monotonic())
        if not room.walking:
            room.walking = True
            asyncio.get_running_loop().call_soon(self._walk, room)

    def window(self, room: Room) -> float:
        """The least time between two frames to one socket: what the room's broadcasts cost
        the event loop, over the share of the loop a room's fan-out may take (FANOUT_SHARE),
        at most `batch_window`. A frame costs a write per local viewer (most of it the
        kernel's TCP send): 500 viewers' frames take ~1.5 ms and need no batching at 20
        messages a second, where a fixed 40 ms window held a message behind one that came
        40 ms before it; 5,000 take ~15 ms, and on a loaded machine several times that, when
        frames are spaced out and carry more messages each instead of taking the whole loop."""
        return min(self.batch_window, room.cost / FANOUT_SHARE)

    def _walk(self, room: Room) -> None:
        """One step of the room's walk over its sockets, a slice (`SLICE`) a turn of the event
        loop: the next slice with a socket behind on the room's messages is sent, each such
        socket every message it has not had, in one frame.

        A slice is sent at most once a window (`window`): one whose last frame went less than
        a window ago is passed over until then. A quiet room's walk goes round at once, one
        frame to everyone; in a busy one each slice gets its frame a window after its last
        one, the slices' frames spread over the window, so a message waits about a window at
        most for any socket. (One frame to every socket once a window instead waited up to a
        window for the frame, and then for the writes to every socket before it: a window and
        a lap.) Each socket still gets at most one frame a window, the messages in order."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        window = self.window(room)
        # Sockets came or went: a new ring, at most once a window (a connect storm's joins
        # do not make the walk go over every socket at each slice).
        if room.at == 0 and room.changes != room.ring_changes and now >= room.ring_at + window:
            self._new_ring(room)
            room.ring_at = now
        ring, runs, behind = room.ring, room.slice_runs, room.slice_seen
        seq = room.log_base + len(room.log)
        for k in range(room.at // SLICE, len(behind)):
            if behind[k] >= seq or runs[k] + window > now:
                continue
            began = time.perf_counter()
            written, messages = write_behind(
                ring[k * SLICE : (k + 1) * SLICE], room.log, room.log_base, seq
            )
            spent = time.perf_counter() - began
            oldest = behind[k]
            runs[k], behind[k] = now, seq
            if written:
                metrics.FANOUT_LAG.observe(time.monotonic() - room.arrived[oldest - room.log_base])
                metrics.WS_MESSAGES_OUT.inc(messages)
                # What a frame to every socket costs, from this slice's, smoothed: a round of
                # slices moves it half way, as a whole frame's cost did, so a slice that a
                # collection or another process held up adds half its delay, not that times
                # the number of slices.
                full = spent * len(ring) / written
                weight = 0.5 * written / len(ring)
                room.cost = room.cost + (full - room.cost) * weight if room.cost else full
            room.at = (k + 1) * SLICE
            loop.call_soon(self._walk, room)
            return
        room.at = 0  # round the ring: the next slice due, if any
        due = min((runs[k] + window for k in range(len(behind)) if behind[k] < seq), default=None)
        if room.changes != room.ring_changes:  # new sockets (or gone ones): a new ring first
            due = min(due or float("inf"), room.ring_at + window)
        else:
            low = min(behind, default=seq)  # what every socket of the ring has had: let go
            del room.log[: low - room.log_base]
            del room.arrived[: low - room.log_base]
            room.log_base = low
        if due is not None:
            loop.call_at(max(now, due), self._walk, room)
            return
        room.walking = False  # every socket has every message
        room.log.clear()
        room.arrived.clear()
        room.log_base = seq

    def _new_ring(self, room: Room) -> None:
        """The room's sockets as they are now, in slices, each slice with the oldest message
        one of its sockets has not had; the messages every socket has are let go."""
        ring = room.ring = list(room.connections.values())
        room.ring_changes = room.changes
        seq = room.log_base + len(room.log)
        slices = -(-len(ring) // SLICE)
        room.slice_seen = [
            min(c.seen for c in ring[k * SLICE : (k + 1) * SLICE]) for k in range(slices)
        ]
        runs = room.slice_runs[:slices]
        room.slice_runs = runs + [float("-inf")] * (slices - len(runs))
        low = min(room.slice_seen, default=seq)
        del room.log[: low - room.log_base]
        del room.arrived[: low - room.log_base]
        room.log_base = low

    def broadcast_frame(self, room: Room, frame: OutFrame) -> None:
        deliver(frame, list(room.connections.values()), 0, None)

    def _control(self, room: Room, data: bytes) -> None:
        try:
            instruction = jsonparse.loads(data)
            kicked = uuid.UUID(instruction["kick"])
        except (ValueError, KeyError, TypeError):
            log.warning("bad_control_message", event_id=str(room.event_id))
            return
        for connection in list(room.connections.values()):
            if connection.user_id == kicked:
                connection.shut(p.CloseCode.KICKED, "banned by a moderator")

    # --- reactions --------------------------------------------------------------------------------

    def react(self, event_id: uuid.UUID, kind: str) -> None:
        room = self.rooms.get(event_id)
        if room is not None:
            room.reactions[kind] += 1


def _system_message(data: bytes) -> p.System | None:
    try:
        change = StateChange.model_validate_json(data)
    except ValidationError:
        return None
    if change.status == EventStatus.LIVE:
        resumed = change.previous == EventStatus.RECONNECTING
        kind = "stream_resumed" if resumed else "stream_live"
        text = "The stream is back" if resumed else "The stream is live"
        return p.System(kind=kind, text=text, at=change.at)
    if change.status == EventStatus.RECONNECTING:
        return p.System(
            kind="stream_reconnecting", text="The stream dropped; reconnecting", at=change.at
        )
    if change.status.is_finished:
        return p.System(kind="stream_ended", text="The stream has ended", at=change.at)
    return None


async def shutdown_all_hubs() -> None:
    """Close every connection of every hub in this process with 4503 (on SIGTERM)."""
    for hub in list(_LIVE_HUBS):
        await hub.shutdown_connections()


def _let_ring_go(room: Room) -> None:
    """Forget the ring of a room whose walk is over (every socket has every message): it would
    keep the sockets gone since alive until the room's next message. That message takes a new
    ring at once (`Hub._walk`)."""
    room.ring = []
    room.slice_seen = []
    room.ring_changes = -1
    room.ring_at = float("-inf")
