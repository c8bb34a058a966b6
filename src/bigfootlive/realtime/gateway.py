"""The WebSocket gateway `/ws/events/{event_id}` (protocol: realtime/protocol.py, docs/realtime.md).

A connection's life: accept -> identify (bearer subprotocol, or a first `auth` message) -> check
the event, its visibility and bans (a refusal is a close with its own 4xxx code) -> join the hub
-> `welcome` -> read client frames until the socket closes. Chat rules live in `chat/`;
the handlers of client messages (commands.py) only translate frames to chat calls and results to
frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import structlog
from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.websockets import WebSocketDisconnect

from bigfootlive.chat import reads, rules
from bigfootlive.chat.schemas import RoomSettingsOut
from bigfootlive.deps import app_state
from bigfootlive.errors import BigfootError
from bigfootlive.events import access
from bigfootlive.events.schemas import Visibility
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import Event
from bigfootlive.observability import metrics
from bigfootlive.realtime import protocol as p
from bigfootlive.realtime.admission import Admission, load_admission
from bigfootlive.realtime.commands import Commands, Refused
from bigfootlive.realtime.connection import Connection, fast_path_transport
from bigfootlive.web.session import socket_token

log = structlog.get_logger(__name__)

router = APIRouter()


@router.websocket("/ws/events/{event_id}")
async def event_socket(websocket: WebSocket, event_id: str) -> None:
    state = app_state(websocket)
    offered: list[str] = list(websocket.scope.get("subprotocols") or [])
    token = next(
        (s[len(p.BEARER_PREFIX) :] for s in offered if s.startswith(p.BEARER_PREFIX)), None
    )
    if token is None:  # a page of ours: the browser session's cookie (same origin only)
        token = socket_token(websocket, state.settings)
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


class Gateway(Commands):
    """Opens the socket (identify, check the event and bans, join the hub), then reads client
    frames and dispatches them to the handlers (commands.py) until the socket closes."""

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
        room: RoomSettingsOut | None = None
        if token is None:
            # Anonymous: from the process's admission snapshot, no transaction (admission.py).
            room = await self._admit_anonymous(event_id)
        else:
            # Signed in: one read session for the token, the event, bans and the room.
            async with self.state.db.sessionmaker() as session:
                self.subject = await self._authenticate(session, token)
                self.event = await self._find_event(session, event_id)
                room = None if self.event is None else await self._admit(session, self.event)
        if self.event is None or room is None:
            # Anonymous on a non-public event: a first `auth` message may still identify it.
            token = await self._await_auth_token()
            async with self.state.db.sessionmaker() as session:
                self.subject = await self._authenticate(session, token)
                self.event = await self._find_event(session, event_id)
                if self.event is None:
                    raise Refused(p.CloseCode.NO_SUCH_EVENT, "no such event")
                room = await self._admit(session, self.event)
        self.connection = Connection(
            self.event.id,
            None if self.subject is None else self.subject.user_id,
            self.websocket.send_text,
            # The socket's own method, not one of this gateway's: the gateway keeps the
            # connection, and a connection keeping the gateway made every closed socket (its
            # protocol, transport and parser) garbage only a collection of an older generation
            # frees, and those are rare (app.GC_THRESHOLDS).
            self.websocket.close,
            self.settings.ws_send_queue_size,
            transport=fast_path_transport(self.websocket.scope),
        )
        self.connection.host = (
            self.subject is not None and self.subject.user_id == self.event.owner_id
        )
        self.meta = RequestMeta(
            ip=self.meta.ip, user_agent=self.meta.user_agent, request_id=f"ws:{self.connection.id}"
        )
        await self.hub.join(self.connection)
        if self.subject is not None:
            await self.hub.join_user(self.connection, self.subject.session_id)
        if not self.connection.host:
            viewer = f"user:{self.subject.user_id}" if self.subject else f"anon:{self.meta.ip}"
            self.hub.presence.seen(self.event.id, viewer)
        self._send(self._welcome(room))
        # The handshake's headers are not needed any more (the client's address and user agent
        # are in `meta`): not kept for the socket's life (memory per viewer, docs/realtime.md).
        headers = self.websocket.scope.get("headers")
        if isinstance(headers, list):
            headers.clear()

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
            can_moderate=rules.can_moderate(self.subject, self.open_event),
            room=p.RoomState(**room.model_dump()),
            heartbeat_seconds=self.settings.ws_heartbeat_seconds,
        )

    async def _admit_anonymous(self, event_id: uuid.UUID) -> RoomSettingsOut | None:
        """The room when the event is public (the event is then `self.event`); None when it
        exists but is not (a first `auth` message may still open it). Refuses with 4404 when
        there is no such event or its tenant is deactivated, with 4411 when it has ended or was
        cancelled (its chat is closed; history stays readable over REST)."""
        admission = await self.hub.admissions.get(event_id, self._load_admission)
        if admission is None or not admission.tenant_active:
            raise Refused(p.CloseCode.NO_SUCH_EVENT, "no such event")
        if admission.event.visibility != Visibility.PUBLIC:
            return None
        if admission.event.status.is_finished:
            raise Refused(p.CloseCode.EVENT_ENDED, "event ended")
        self.event = admission.event
        return admission.room

    async def _load_admission(self, event_id: uuid.UUID) -> Admission | None:
        async with self.state.db.sessionmaker() as session:
            return await load_admission(session, event_id)

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
            await reads.ensure_not_banned(session, self.subject, event)
        except rules.Banned:
            raise Refused(p.CloseCode.BANNED, "banned from this event") from None
        return await reads.room_state(session, event)

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

    async def run(self) -> None:
        # Pings, the idle cut-off and the revocation check: the hub's heartbeat (heartbeat.py).
        try:
            await self._read_loop()
        finally:
            await self.hub.leave(self.conn)
            await self.hub.leave_user(self.conn)

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
            metrics.WS_MESSAGES_IN.inc()
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


def _bad_frame(exc: ValidationError) -> p.Error:
    errors = exc.errors()
    problems = [
        f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors[:5]
    ]
    code = "invalid_json" if any(e.get("type") == "json_invalid" for e in errors) else "bad_frame"
    return p.Error(
        code=code, message="The frame is not a valid message", details={"problems": problems}
    )
