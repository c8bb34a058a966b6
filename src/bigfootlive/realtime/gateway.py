"""The WebSocket gateway `/ws/events/{event_id}` (protocol: realtime/protocol.py, docs/realtime.md).

A connection's life: accept -> identify (bearer subprotocol, or a first `auth` message) -> check
the event, its visibility and bans (a refusal is a close with its own 4xxx code) -> join the hub
-> `welcome` -> read client frames until the socket closes. Chat rules live in `chat.service`;
this module only translates frames to service calls and results to frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any, cast

import structlog
from fastapi import APIRouter, WebSocket
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.websockets import WebSocketDisconnect

from bigfootlive.analytics import service as analytics
from bigfootlive.authz.deps import authenticate
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.chat import service as chat
from bigfootlive.chat.schemas import RoomSettingsOut, RoomSettingsPatch
from bigfootlive.composition import AppState
from bigfootlive.errors import BigfootError, Unauthorized
from bigfootlive.events import access
from bigfootlive.events.schemas import Visibility
from bigfootlive.kit.net import client_ip, user_agent
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import Event
from bigfootlive.realtime import protocol as p
from bigfootlive.realtime.hub import Connection, Hub, OutFrame, shutdown_all_hubs

log = structlog.get_logger(__name__)

router = APIRouter()


class Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@router.websocket("/ws/events/{event_id}")
async def event_socket(websocket: WebSocket, event_id: str) -> None:
    state: AppState = websocket.app.state.bigfoot
    offered: list[str] = list(websocket.scope.get("subprotocols") or [])
    token = next(
        (s[len(p.BEARER_PREFIX) :] for s in offered if s.startswith(p.BEARER_PREFIX)), None
    )
    await websocket.accept(subprotocol=p.PROTOCOL if p.PROTOCOL in offered else None)
    gateway = Gateway(state, websocket)
    try:
        await gateway.open(event_id, token, offered)
    except Refused as refusal:
        await _close(websocket, refusal.code, refusal.reason)
        return
    await gateway.run()


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await websocket.close(code=code, reason=reason)


class Gateway:
    def __init__(self, state: AppState, websocket: WebSocket) -> None:
        self.state = state
        self.settings = state.settings
        self.hub: Hub = state.hub
        self.websocket = websocket
        self.subject: AuthSubject | None = None
        self.event: Event | None = None
        self.connection: Connection | None = None
        self.meta = RequestMeta(
            ip=client_ip(websocket, self.settings.trusted_proxies),
            user_agent=user_agent(websocket),
            request_id="",
        )
        self._reactions_window = 0
        self._reactions_in_window = 0

    @property
    def event_id(self) -> uuid.UUID:
        return self.open_event.id

    @property
    def open_event(self) -> Event:
        if self.event is None:
            raise RuntimeError("the gateway is not open")
        return self.event

    @property
    def conn(self) -> Connection:
        if self.connection is None:
            raise RuntimeError("the gateway is not open")
        return self.connection

    # --- opening -------------------------------------------------------------------------------

    async def open(self, raw_event_id: str, token: str | None, offered: list[str]) -> None:
        if self.hub.shutting_down:
            raise Refused(p.CloseCode.SHUTTING_DOWN, "server shutting down")
        versions = [s for s in offered if s.startswith("bigfootlive.v")]
        if versions and p.PROTOCOL not in versions:
            raise Refused(p.CloseCode.UNSUPPORTED_PROTOCOL, "unsupported protocol version")
        try:
            event_id = uuid.UUID(raw_event_id)
        except ValueError:
            raise Refused(p.CloseCode.NO_SUCH_EVENT, "no such event") from None
        # One read session for the token, the event, bans and the room: a reconnect storm of
        # thousands of viewers costs one transaction each.
        async with self.state.db.read_sessionmaker() as session:
            if token is not None:
                self.subject = await self._authenticate(session, token)
            self.event = await self._find_event(session, event_id)
            room = None if self.event is None else await self._admit(session, self.event)
        if self.event is None or room is None:
            # Anonymous on a non-public event: a first `auth` message may still identify it.
            token = await self._await_auth_token()
            async with self.state.db.read_sessionmaker() as session:
                self.subject = await self._authenticate(session, token)
                self.event = await self._find_event(session, event_id)
                if self.event is None:
                    raise Refused(p.CloseCode.NO_SUCH_EVENT, "no such event")
                room = await self._admit(session, self.event)
        self.connection = Connection(
            self.event.id,
            None if self.subject is None else self.subject.user_id,
            self.websocket.send_text,
            self._closer,
            self.settings.ws_send_queue_size,
            transport=fast_path_transport(self.websocket.scope),
        )
        self.meta = RequestMeta(
            ip=self.meta.ip, user_agent=self.meta.user_agent, request_id=f"ws:{self.connection.id}"
        )
        await self.hub.join(self.connection)
        if self.subject is not None:
            await self.hub.join_user(self.connection, self.subject.session_id)
        viewer = f"user:{self.subject.user_id}" if self.subject else f"anon:{self.meta.ip}"
        with contextlib.suppress(Exception):
            await self.hub.presence.seen(self.event.id, viewer)
        self._send(self._welcome(room))

    async def _closer(self, code: int, reason: str) -> None:
        await self.websocket.close(code=code, reason=reason)

    def _welcome(self, room: RoomSettingsOut) -> p.Welcome:
        user = None
        if self.subject is not None:
            user = p.UserRef(id=self.subject.user_id, display_name=self.subject.user.display_name)
        return p.Welcome(
            connection_id=self.conn.id,
            event_id=self.open_event.id,
            event_status=self.open_event.status,
            user=user,
            read_only=self.subject is None,
            can_moderate=chat.can_moderate(self.subject, self.open_event),
            room=p.RoomState(**room.model_dump()),
            heartbeat_seconds=self.settings.ws_heartbeat_seconds,
        )

    async def _authenticate(self, session: AsyncSession, token: str) -> AuthSubject:
        try:
            return await authenticate(self.state, session, token)
        except Unauthorized as exc:
            raise Refused(p.CloseCode.UNAUTHORIZED, exc.code) from None

    async def _find_event(self, session: AsyncSession, event_id: uuid.UUID) -> Event | None:
        """The event if the subject may watch it; None when anonymous and it is not public.
        Refuses with 4404 (missing, or another tenant's) or 4403 (private to others)."""
        try:
            return await access.get_viewable_event(session, self.subject, event_id)
        except access.EventNotFound:
            pass
        if self.subject is None:
            visibility = await access.visibility_of(session, event_id)
            if visibility is None or visibility == Visibility.PUBLIC:
                raise Refused(p.CloseCode.NO_SUCH_EVENT, "no such event") from None
            return None
        try:
            await access.get_event(session, self.subject.tenant_id, event_id)
        except access.EventNotFound:
            raise Refused(p.CloseCode.NO_SUCH_EVENT, "no such event") from None
        raise Refused(p.CloseCode.FORBIDDEN, "private event")

    async def _admit(self, session: AsyncSession, event: Event) -> RoomSettingsOut:
        """Refuse a banned subject (4405); the room as the `welcome` shows it."""
        try:
            await chat.ensure_not_banned(session, self.subject, event)
        except chat.Banned:
            raise Refused(p.CloseCode.BANNED, "banned from this event") from None
        return await chat.room_state(session, event)

    async def _await_auth_token(self) -> str:
        try:
            raw = await asyncio.wait_for(
                self.websocket.receive_text(), self.settings.ws_auth_timeout_seconds
            )
        except TimeoutError:
            raise Refused(p.CloseCode.AUTH_TIMEOUT, "authentication required") from None
        except (WebSocketDisconnect, RuntimeError, KeyError):
            raise Refused(p.CloseCode.UNAUTHORIZED, "authentication required") from None
        try:
            message = p.client_message.validate_json(raw)
        except ValidationError:
            message = None
        if not isinstance(message, p.AuthIn):
            raise Refused(p.CloseCode.UNAUTHORIZED, "authentication required")
        return message.token

    # --- running -------------------------------------------------------------------------------

    def _send(self, *messages: BaseModel) -> None:
        self.conn.offer(OutFrame.of(p.encode(*messages)))

    async def run(self) -> None:
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            await self._read_loop()
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            await self.hub.leave(self.conn)
            await self.hub.leave_user(self.conn)

    async def _heartbeat(self) -> None:
        connection = self.conn
        interval = self.settings.ws_heartbeat_seconds
        ping = OutFrame.of(p.encode(p.Ping()))
        while not connection.closing:
            await asyncio.sleep(min(interval, self.settings.ws_idle_timeout_seconds / 2))
            if time.monotonic() - connection.last_seen > self.settings.ws_idle_timeout_seconds:
                connection.shut(p.CloseCode.IDLE_TIMEOUT, "no heartbeat")
                return
            # The hub closes a socket as soon as its revocation is published; this catches one
            # it missed (published while the socket was opening, or lost in transit).
            if self.subject is not None and await self._session_revoked(self.subject):
                connection.shut(p.CloseCode.UNAUTHORIZED, "session revoked")
                return
            connection.offer(ping)

    async def _session_revoked(self, subject: AuthSubject) -> bool:
        try:
            return await self.state.revoked.is_revoked(subject.session_id)
        except Exception:  # the cache is away: keep the socket, look again next time
            log.warning("ws_revocation_check_failed", exc_info=True)
            return False

    async def _read_loop(self) -> None:
        connection = self.conn
        limit = self.settings.ws_max_frame_bytes
        while True:
            try:
                received = await self.websocket.receive()
            except (RuntimeError, WebSocketDisconnect):
                return
            if received["type"] == "websocket.disconnect":
                return
            connection.last_seen = time.monotonic()
            if connection.closing:
                continue
            raw: str | bytes | None = received.get("text")
            if raw is None:
                raw = received.get("bytes") or b""
            if len(raw) > limit:
                self._send(
                    p.Error(code="frame_too_large", message=f"Frames are limited to {limit} bytes")
                )
                continue
            try:
                message = p.client_message.validate_json(raw)
            except ValidationError as exc:
                self._send(_bad_frame(exc))
                continue
            try:
                await self._dispatch(message)
            except BigfootError as exc:
                self._send(
                    p.Error(
                        ref=message.ref, code=exc.code, message=exc.message, details=exc.details
                    )
                )
            except Refused as refusal:
                connection.shut(refusal.code, refusal.reason)
            except Exception:
                log.exception("ws_command_failed", type=message.type)
                self._send(
                    p.Error(ref=message.ref, code="internal_error", message="Something went wrong")
                )

    async def _dispatch(self, message: Any) -> None:
        handler: Callable[[Any], Any] = getattr(self, f"_on_{message.type}")
        await handler(message)

    def _require_subject(self) -> AuthSubject:
        if self.subject is None:
            raise chat.ReadOnly()
        return self.subject

    # --- handlers ------------------------------------------------------------------------------

    async def _on_ping(self, message: p.PingIn) -> None:
        self._send(p.Pong(ref=message.ref))

    async def _on_pong(self, message: p.PongIn) -> None:
        return None

    async def _on_auth(self, message: p.AuthIn) -> None:
        if self.subject is not None:
            raise BigfootError("Already signed in on this connection", code="already_authenticated")
        async with self.state.db.read_sessionmaker() as session:
            subject = await self._authenticate(session, message.token)
            try:
                event = await access.get_viewable_event(session, subject, self.event_id)
            except access.EventNotFound:
                raise Refused(p.CloseCode.FORBIDDEN, "private event") from None
            try:
                await chat.ensure_not_banned(session, subject, event)
            except chat.Banned:
                raise Refused(p.CloseCode.BANNED, "banned from this event") from None
        self.subject, self.event = subject, event
        self.conn.user_id = subject.user_id
        await self.hub.join_user(self.conn, subject.session_id)
        self._send(p.Ack(ref=message.ref))

    async def _on_send(self, message: p.SendIn) -> None:
        subject = self._require_subject()
        async with self.state.db.transaction() as session:
            event = await access.get_viewable_event(session, subject, self.event_id)
            out = await chat.send_message(
                self.state, session, subject, event, message.body, message.reply_to
            )
        # The transaction has committed: only now does the sender learn it was accepted.
        self._send(p.Ack(ref=message.ref, message=out))

    async def _on_delete(self, message: p.DeleteIn) -> None:
        subject = self._require_subject()
        async with self.state.db.transaction() as session:
            await chat.delete_message(
                self.state, session, self.meta, subject, self.event_id, message.message_id
            )
        self._send(p.Ack(ref=message.ref))

    async def _on_react(self, message: p.ReactIn) -> None:
        self._require_subject()
        second = int(time.monotonic())
        if second != self._reactions_window:
            self._reactions_window, self._reactions_in_window = second, 0
        self._reactions_in_window += 1
        if self._reactions_in_window > self.settings.reactions_per_second:
            raise chat.ChatRateLimited("Too many reactions")
        self.hub.react(self.event_id, message.kind)
        await analytics.record_activity(
            self.state, self.event_id, self.open_event.tenant_id, "reaction"
        )
        if message.ref is not None:
            self._send(p.Ack(ref=message.ref))

    async def _on_resume(self, message: p.ResumeIn) -> None:
        async with self.state.db.read_sessionmaker() as session:
            missed, complete = await chat.missed_since(
                session, self.open_event, message.last_id, self.settings.chat_resume_limit
            )
        self._send(p.History(messages=missed, complete=complete))

    async def _on_timeout(self, message: p.TimeoutIn) -> None:
        subject = self._require_subject()
        async with self.state.db.transaction() as session:
            await chat.timeout_user(
                self.state,
                session,
                self.meta,
                subject,
                self.event_id,
                message.user_id,
                message.seconds,
                message.reason,
            )
        self._send(p.Ack(ref=message.ref))

    async def _on_ban(self, message: p.BanIn) -> None:
        subject = self._require_subject()
        async with self.state.db.transaction() as session:
            await chat.ban_user(
                self.state,
                session,
                self.meta,
                subject,
                self.event_id,
                message.user_id,
                message.reason,
            )
        self._send(p.Ack(ref=message.ref))

    async def _on_unban(self, message: p.UnbanIn) -> None:
        subject = self._require_subject()
        async with self.state.db.transaction() as session:
            await chat.unban_user(
                self.state, session, self.meta, subject, self.event_id, message.user_id
            )
        self._send(p.Ack(ref=message.ref))

    async def _room(self, ref: str | None, patch: RoomSettingsPatch) -> None:
        subject = self._require_subject()
        async with self.state.db.transaction() as session:
            await chat.update_room(self.state, session, self.meta, subject, self.event_id, patch)
        self._send(p.Ack(ref=ref))

    async def _on_slow_mode(self, message: p.SlowModeIn) -> None:
        await self._room(message.ref, RoomSettingsPatch(slow_mode_seconds=message.seconds))

    async def _on_followers_only(self, message: p.FollowersOnlyIn) -> None:
        await self._room(message.ref, RoomSettingsPatch(followers_only=message.enabled))

    async def _on_pin(self, message: p.PinIn) -> None:
        subject = self._require_subject()
        async with self.state.db.transaction() as session:
            await chat.pin_message(
                self.state, session, self.meta, subject, self.event_id, message.message_id
            )
        self._send(p.Ack(ref=message.ref))

    async def _on_unpin(self, message: p.UnpinIn) -> None:
        subject = self._require_subject()
        async with self.state.db.transaction() as session:
            await chat.pin_message(self.state, session, self.meta, subject, self.event_id, None)
        self._send(p.Ack(ref=message.ref))


RAW_SEND_KEY = "bigfootlive.raw_send"


class CaptureRawSend:
    """Outermost ASGI middleware: keeps the server's own `send` for WebSocket scopes, so the
    gateway can reach the socket's transport for the fast path (see `hub.Connection`)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            scope[RAW_SEND_KEY] = send
        await self.app(scope, receive, send)


def fast_path_transport(scope: Any) -> asyncio.WriteTransport | None:
    """The transport, when frames may be written to it directly: uvicorn's websockets-sansio
    protocol with no extension negotiated. Otherwise None (frames go through ASGI)."""
    protocol = getattr(scope.get(RAW_SEND_KEY), "__self__", None)
    if type(protocol).__name__ != "WebSocketsSansIOProtocol":
        return None
    connection = getattr(protocol, "conn", None)
    transport = getattr(protocol, "transport", None)
    if connection is None or getattr(connection, "extensions", None) != []:
        return None
    needed = ("write", "get_write_buffer_size", "is_closing", "abort")
    if transport is None or not all(hasattr(transport, name) for name in needed):
        return None
    return cast("asyncio.WriteTransport", transport)  # uvloop's transports do not subclass it


def _bad_frame(exc: ValidationError) -> p.Error:
    errors = exc.errors()
    problems = [
        f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors[:5]
    ]
    code = "invalid_json" if any(e.get("type") == "json_invalid" for e in errors) else "bad_frame"
    return p.Error(
        code=code, message="The frame is not a valid message", details={"problems": problems}
    )


def install_sigterm_drain() -> Callable[[], None]:
    """On SIGTERM, first close every WebSocket with 4503, then hand the signal to the server
    (uvicorn), whose own shutdown would otherwise close them with a generic 1012."""
    try:
        previous = signal.getsignal(signal.SIGTERM)
    except ValueError:
        return lambda: None
    if not callable(previous):
        return lambda: None
    loop = asyncio.get_running_loop()
    forward: Callable[..., Any] = previous

    def drain_then_forward(signum: int, frame: Any) -> None:
        async def run() -> None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(shutdown_all_hubs(), timeout=5.0)
            forward(signum, frame)

        loop.call_soon_threadsafe(lambda: _keep(loop.create_task(run())))

    try:
        signal.signal(signal.SIGTERM, drain_then_forward)
    except ValueError:  # not the main thread
        return lambda: None

    def restore() -> None:
        with contextlib.suppress(ValueError):
            if signal.getsignal(signal.SIGTERM) is drain_then_forward:
                signal.signal(signal.SIGTERM, previous)

    return restore


_TASKS: set[asyncio.Task[None]] = set()


def _keep(task: asyncio.Task[None]) -> None:
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)
