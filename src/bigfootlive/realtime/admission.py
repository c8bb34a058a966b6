"""Admitting anonymous viewers without a database transaction.

A public event's anonymous viewer needs three facts to be let in: the event exists and is
public, its tenant is active, and the room settings its `welcome` shows. A connect storm (a
stream going live in front of thousands of waiting viewers) would otherwise open one database
transaction per socket. `Admissions` keeps one snapshot per event in the process, loaded by one
read session however many sockets ask at once (single flight), and drops it:

- when the event changes (`events:changed`, published after the commit of an update or a state
  change) or its tenant is activated or deactivated (`tenants:status`), in every process;
- when the room changes: the hub drops it on any chat broadcast other than a plain message
  (room settings, pin, delete) and on the event's state channel;
- when the hub subscribes a room (the first local viewer) and when it drops one (the last
  viewer left), since without a subscription nothing else would tell it;
- at the latest `WS_ADMISSION_CACHE_SECONDS` after it was loaded (a lost pub/sub message).

Signed-in viewers still go through the database: their token, their bans and the event's
visibility to them are checked as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.chat.reads import room_state
from bigfootlive.chat.schemas import RoomSettingsOut
from bigfootlive.events import repository as events_repo
from bigfootlive.events.cache import EventRef
from bigfootlive.events.wire import CHANGED_CHANNEL
from bigfootlive.kit import jsonparse
from bigfootlive.kit.backends import PubSub
from bigfootlive.tenants import repository as tenants_repo
from bigfootlive.tenants.service import STATUS_CHANNEL

log = structlog.get_logger(__name__)

# Loads a snapshot in one read session (None: no such event).
Loader = Callable[[uuid.UUID], Awaitable["Admission | None"]]


@dataclass(frozen=True, slots=True)
class Admission:
    """What an anonymous viewer's admission and `welcome` need of an event."""

    event: EventRef
    room: RoomSettingsOut
    tenant_active: bool


async def load_admission(session: AsyncSession, event_id: uuid.UUID) -> Admission | None:
    """The snapshot of `event_id` from the database (None: no such event)."""
    event = await events_repo.get_for_visibility_check(session, event_id)
    if event is None:
        return None
    tenant = await tenants_repo.get_tenant(session, event.tenant_id)
    room = await room_state(session, event)
    return Admission(EventRef.of(event), room, tenant is not None and tenant.is_active)


class Admissions:
    def __init__(self, pubsub: PubSub, ttl: float) -> None:
        self.pubsub = pubsub
        self.ttl = ttl
        self._entries: dict[uuid.UUID, tuple[float, Admission | None]] = {}
        self._loading: dict[uuid.UUID, asyncio.Future[Admission | None]] = {}
        # Bumped by each invalidation: a load that started before one is not kept.
        self._generation = 0
        self._unsubscribes: list[Callable[[], Awaitable[None]]] = []
        self._started = False
        self.loads = 0  # database loads, for tests and benchmarks

    async def start(self) -> None:
        """Listen for invalidations (idempotent; the first `get` calls it)."""
        if self._started:
            return
        self._started = True
        try:
            self._unsubscribes = [
                await self.pubsub.subscribe(CHANGED_CHANNEL, self._on_event_changed),
                await self.pubsub.subscribe(STATUS_CHANNEL, self._on_tenant_changed),
            ]
        except Exception:  # pub/sub is away: snapshots still expire; try again next time
            log.warning("admission_subscribe_failed", exc_info=True)
            self._started = False

    async def close(self) -> None:
        for unsubscribe in self._unsubscribes:
            with contextlib.suppress(Exception):
                await unsubscribe()
        self._unsubscribes = []
        self._started = False
        self.clear()

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()

    async def get(self, event_id: uuid.UUID, loader: Loader) -> Admission | None:
        """The snapshot of `event_id` (None: no such event), loaded at most once at a time."""
        if not self._started:
            await self.start()
        found = self._entries.get(event_id)
        if found is not None and found[0] > time.monotonic():
            return found[1]
        pending = self._loading.get(event_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Admission | None] = asyncio.get_running_loop().create_future()
        self._loading[event_id] = future
        generation = self._generation
        try:
            self.loads += 1
            admission = await loader(event_id)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters (if any) get it through their shield
            raise
        finally:
            self._loading.pop(event_id, None)
        if generation == self._generation:
            self._entries[event_id] = (time.monotonic() + self.ttl, admission)
        future.set_result(admission)
        return admission

    def holds(self, event_id: uuid.UUID) -> bool:
        """Whether a snapshot of the event is kept (tests)."""
        return event_id in self._entries

    def invalidate(self, event_id: uuid.UUID) -> None:
        self._generation += 1
        self._entries.pop(event_id, None)

    def invalidate_tenant(self, tenant_id: uuid.UUID) -> None:
        self._generation += 1
        for event_id, (_, admission) in list(self._entries.items()):
            if admission is None or admission.event.tenant_id == tenant_id:
                self._entries.pop(event_id, None)

    async def _on_event_changed(self, data: bytes) -> None:
        try:
            self.invalidate(uuid.UUID(data.decode()))
        except ValueError:
            log.warning("bad_event_changed_message")
            self.clear()

    async def _on_tenant_changed(self, data: bytes) -> None:
        try:
            tenant_id = uuid.UUID(str(jsonparse.loads(data)["tenant_id"]))
        except (ValueError, KeyError, TypeError):
            log.warning("bad_tenant_status_message")
            self.clear()
            return
        self.invalidate_tenant(tenant_id)
