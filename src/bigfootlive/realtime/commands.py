"""What a connected client may ask: one `_on_<type>` handler per client message type, each
translating a frame to a chat call and its result to frames. `Gateway` (gateway.py) opens the
socket and reads its frames; a handler's refusal closes it with its own 4xxx code.
"""

from __future__ import annotations

import collections
import time
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import WebSocket
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.analytics import service as analytics
from bigfootlive.authz.deps import authenticate
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.chat import moderation, reads, rules, send_pg
from bigfootlive.chat.schemas import RoomSettingsPatch
from bigfootlive.chat.send import send_message
from bigfootlive.composition import AppState
from bigfootlive.errors import BigfootError, Unauthorized
from bigfootlive.events import access
from bigfootlive.events.cache import EventRef
from bigfootlive.kit.net import client_ip, user_agent
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import Event
from bigfootlive.realtime import protocol as p
from bigfootlive.realtime.connection import Connection, OutFrame
from bigfootlive.realtime.hub import Hub


class Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Commands:
    """A connected client's state, and the commands it may send."""

    def __init__(self, state: AppState, websocket: WebSocket) -> None:
        self.state = state
        self.settings = state.settings
        self.hub: Hub = state.hub
        self.websocket = websocket
        self.subject: AuthSubject | None = None
        # The ORM row when signed in; the admission snapshot for an anonymous viewer.
        self.event: Event | EventRef | None = None
        self.connection: Connection | None = None
        self.meta = RequestMeta(
            ip=client_ip(websocket, self.settings.trusted_proxies),
            user_agent=user_agent(websocket),
            request_id="",
        )
        # When this connection's last reactions were taken (a sliding one-second window: a
        # window per calendar second let a burst across its edge through at twice the limit).
        self._reaction_times: collections.deque[float] = collections.deque(
            maxlen=max(self.settings.reactions_per_second, 1)
        )

    @property
    def event_id(self) -> uuid.UUID:
        return self.open_event.id

    @property
    def open_event(self) -> Event | EventRef:
        if self.event is None:
            raise RuntimeError("the gateway is not open")
        return self.event

    @property
    def conn(self) -> Connection:
        if self.connection is None:
            raise RuntimeError("the gateway is not open")
        return self.connection

    def _send(self, *messages: BaseModel) -> None:
        self.conn.offer(OutFrame.of(p.encode(*messages)))

    async def _authenticate(self, session: AsyncSession, token: str) -> AuthSubject:
        try:
            return await authenticate(self.state, token)
        except Unauthorized as exc:
            raise Refused(p.CloseCode.UNAUTHORIZED, exc.code) from None

    async def _dispatch(self, message: Any) -> None:
        handler: Callable[[Any], Any] = getattr(self, f"_on_{message.type}")
        await handler(message)

    def _require_subject(self) -> AuthSubject:
        if self.subject is None:
            raise rules.ReadOnly()
        return self.subject

    # --- handlers ------------------------------------------------------------------------------

    async def _on_ping(self, message: p.PingIn) -> None:
        self._send(p.Pong(ref=message.ref))

    async def _on_pong(self, message: p.PongIn) -> None:
        return None

    async def _on_auth(self, message: p.AuthIn) -> None:
        if self.subject is not None:
            raise BigfootError("Already signed in on this connection", code="already_authenticated")
        async with self.state.db.sessionmaker() as session:
            subject = await self._authenticate(session, message.token)
            try:
                event = await access.get_viewable_event(session, subject, self.event_id)
            except access.EventNotFound:
                raise Refused(p.CloseCode.FORBIDDEN, "private event") from None
            try:
                await reads.ensure_not_banned(session, subject, event)
            except rules.Banned:
                raise Refused(p.CloseCode.BANNED, "banned from this event") from None
        self.subject, self.event = subject, event
        self.conn.user_id = subject.user_id
        await self.hub.join_user(self.conn, subject.session_id)
        self._send(p.Ack(ref=message.ref))

    async def _on_send(self, message: p.SendIn) -> None:
        subject = self._require_subject()
        if send_pg.applies(self.state):  # two round trips to PostgreSQL (chat/send_pg.py)
            event = self.open_event
            out = await send_pg.send_over_socket(
                self.state, subject, event.tenant_id, event.id, message.body, message.reply_to
            )
            self._send(p.Ack(ref=message.ref, message=out))
            return
        async with self.state.db.transaction() as session:
            event = await access.get_viewable_event(session, subject, self.event_id)
            out = await send_message(
                self.state, session, subject, event, message.body, message.reply_to
            )
        # The transaction has committed: only now does the sender learn it was accepted.
        self._send(p.Ack(ref=message.ref, message=out))

    async def _on_delete(self, message: p.DeleteIn) -> None:
        subject = self._require_subject()
        async with self.state.db.transaction() as session:
            await moderation.delete_message(
                self.state, session, self.meta, subject, self.event_id, message.message_id
            )
        self._send(p.Ack(ref=message.ref))

    async def _on_react(self, message: p.ReactIn) -> None:
        self._require_subject()
        now, taken = time.monotonic(), self._reaction_times
        if len(taken) == taken.maxlen and now - taken[0] < 1.0:
            raise rules.ChatRateLimited("Too many reactions")
        taken.append(now)
        self.hub.react(self.event_id, message.kind)
        await analytics.record_activity(
            self.state, self.event_id, self.open_event.tenant_id, "reaction"
        )
        if message.ref is not None:
            self._send(p.Ack(ref=message.ref))

    async def _on_resume(self, message: p.ResumeIn) -> None:
        async with self.state.db.sessionmaker() as session:
            missed, complete = await reads.missed_since(
                session, self.open_event, message.last_id, self.settings.chat_resume_limit
            )
        self._send(p.History(messages=missed, complete=complete))

    async def _on_timeout(self, message: p.TimeoutIn) -> None:
        subject = self._require_subject()
        async with self.state.db.transaction() as session:
            await moderation.timeout_user(
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
            await moderation.ban_user(
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
            await moderation.unban_user(
                self.state, session, self.meta, subject, self.event_id, message.user_id
            )
        self._send(p.Ack(ref=message.ref))

    async def _room(self, ref: str | None, patch: RoomSettingsPatch) -> None:
        subject = self._require_subject()
        async with self.state.db.transaction() as session:
            await moderation.update_room(
                self.state, session, self.meta, subject, self.event_id, patch
            )
        self._send(p.Ack(ref=ref))

    async def _on_slow_mode(self, message: p.SlowModeIn) -> None:
        await self._room(message.ref, RoomSettingsPatch(slow_mode_seconds=message.seconds))

    async def _on_followers_only(self, message: p.FollowersOnlyIn) -> None:
        await self._room(message.ref, RoomSettingsPatch(followers_only=message.enabled))

    async def _on_pin(self, message: p.PinIn) -> None:
        subject = self._require_subject()
        async with self.state.db.transaction() as session:
            await moderation.pin_message(
                self.state, session, self.meta, subject, self.event_id, message.message_id
            )
        self._send(p.Ack(ref=message.ref))

    async def _on_unpin(self, message: p.UnpinIn) -> None:
        subject = self._require_subject()
        async with self.state.db.transaction() as session:
            await moderation.pin_message(
                self.state, session, self.meta, subject, self.event_id, None
            )
        self._send(p.Ack(ref=message.ref))
