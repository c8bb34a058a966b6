"""A cache of rows that rarely change, kept in the process and dropped on every process when they
change: `LocalCache`.

For facts a hot path reads on every call but an admin changes once in a while (a tenant's
sign-in policy). Each entry carries a tag (the tenant it belongs to); a change of any row with
that tag drops every entry with it:

- in the writer's process at the commit (its next request reads the change), then on every
  other process by a message on the cache's pub/sub channel, published after the commit and
  before the writer's response is sent (`watch`: the ORM flushes of the watched models are
  found like the principal cache's, `identity.principals`); a Core UPDATE of those tables must
  call `invalidate` itself;
- an entry read while a change was committed is not kept: `generation` is taken before the
  read and `put` refuses it if any invalidation arrived since;
- a lost message (the subscription's connection dropped) is bounded by `ttl`: no entry is
  older than that. Until `start` has subscribed, nothing is kept (a process that does not
  listen never answers from the cache); a pub/sub that cannot be reached at start (Redis down)
  does not stop the process: the subscription is retried with back-off meanwhile.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog
from sqlalchemy import event
from sqlalchemy.orm import Session

from bigfootlive.db import after_commit
from bigfootlive.kit.backends.base import PubSub, Unsubscribe
from bigfootlive.kit.backoff import Backoff

log = structlog.get_logger(__name__)

V = TypeVar("V")

SESSION_INFO_KEY = "local_caches"  # the sessionmaker's `info` entry listing the watching caches
_PENDING_KEY = "local_cache_changes"
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    value: V
    tag: uuid.UUID
    loaded_at: float


class LocalCache(Generic[V]):
    def __init__(self, pubsub: PubSub, channel: str, *, ttl: float) -> None:
        self.pubsub = pubsub
        self.channel = channel
        self.ttl = ttl
        self.generation = 0  # bumped by every invalidation, local or heard
        self._entries: dict[Hashable, _Entry[V]] = {}
        self._unsubscribe: Unsubscribe | None = None
        self._retrying: asyncio.Task[None] | None = None
        self._watched: list[tuple[type[Any], Callable[[Any], uuid.UUID | None]]] = []

    # ------------------------------------------------------------ life

    async def start(self) -> None:
        """Listen for the other processes' invalidations; only then are entries kept. When the
        pub/sub cannot be reached, keep nothing and try again with back-off."""
        if self._unsubscribe is not None or self.ttl <= 0 or self._retrying is not None:
            return
        if not await self._subscribe():
            self._retrying = asyncio.create_task(self._retry(), name=f"subscribe-{self.channel}")

    async def _subscribe(self) -> bool:
        try:
            self._unsubscribe = await self.pubsub.subscribe(self.channel, self._heard)
        except Exception as exc:  # the pub/sub's connection errors are the backend's own types
            log.warning("local_cache_unsubscribed", channel=self.channel, error=type(exc).__name__)
            return False
        return True

    async def _retry(self) -> None:
        backoff = Backoff()
        while True:
            await asyncio.sleep(backoff.failed())
            if await self._subscribe():
                self._retrying = None
                return

    async def stop(self) -> None:
        if self._retrying is not None:
            self._retrying.cancel()
            self._retrying = None
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        self.clear()
        if unsubscribe is not None:
            await unsubscribe()

    def clear(self) -> None:
        self._entries.clear()
        self.generation += 1

    # ------------------------------------------------------------ reading

    def get(self, key: Hashable) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if time.monotonic() - entry.loaded_at >= self.ttl:
            del self._entries[key]
            return None
        return entry.value

    def put(self, key: Hashable, tag: uuid.UUID, value: V, generation: int) -> None:
        """Keep `value`, read after `generation` was taken, unless something changed since."""
        if self._unsubscribe is None or generation != self.generation:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.pop(next(iter(self._entries)))  # the oldest
        self._entries[key] = _Entry(value, tag, time.monotonic())

    # ------------------------------------------------------------ invalidation

    def forget_local(self, tags: Iterable[uuid.UUID]) -> None:
        stale = set(tags)
        self.generation += 1
        for key in [k for k, e in self._entries.items() if e.tag in stale]:
            del self._entries[key]

    async def invalidate(self, tags: Iterable[uuid.UUID]) -> None:
        """These tags' rows changed (committed): drop their entries here and everywhere."""
        tags = set(tags)
        self.forget_local(tags)
        if tags:
            await self.pubsub.publish(self.channel, ",".join(map(str, sorted(tags))).encode())

    async def _heard(self, message: bytes) -> None:
        try:
            tags = {uuid.UUID(part) for part in message.decode().split(",") if part}
        except ValueError:  # not ours: drop everything rather than keep a stale entry
            self.clear()
            return
        self.forget_local(tags)

    def watch(
        self, sessionmaker: Any, model: type[Any], tag_of: Callable[[Any], uuid.UUID | None]
    ) -> None:
        """Invalidate the tag of every `model` row added, changed or deleted through the ORM
        sessions of `sessionmaker` (after their commit)."""
        self._watched.append((model, tag_of))
        if self not in (caches := sessionmaker.kw.get("info", {}).get(SESSION_INFO_KEY, [])):
            info = {**sessionmaker.kw.get("info", {}), SESSION_INFO_KEY: [*caches, self]}
            sessionmaker.configure(info=info)

    def _tags_in(self, session: Session) -> set[uuid.UUID]:
        tags: set[uuid.UUID] = set()
        for obj in (*session.new, *session.dirty, *session.deleted):
            for model, tag_of in self._watched:
                if isinstance(obj, model) and (tag := tag_of(obj)) is not None:
                    tags.add(tag)
        return tags


def _pending(session: Session) -> dict[int, tuple[LocalCache[Any], set[uuid.UUID]]]:
    found: dict[int, tuple[LocalCache[Any], set[uuid.UUID]]] | None = session.info.get(_PENDING_KEY)
    if found is None:
        found = session.info[_PENDING_KEY] = {}
    return found


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, *_: Any) -> None:
    # Before: `session.new` still lists the rows about to be inserted.
    for cache in session.info.get(SESSION_INFO_KEY, ()):
        tags = cache._tags_in(session)
        if not tags:
            continue
        pending = _pending(session)
        if id(cache) not in pending:
            found: set[uuid.UUID] = set()
            pending[id(cache)] = (cache, found)

            async def publish(
                cache: LocalCache[Any] = cache, found: set[uuid.UUID] = found
            ) -> None:
                await cache.invalidate(found)

            after_commit(session, publish)  # once per transaction and cache
        pending[id(cache)][1].update(tags)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    # The writer's own process sees the change at once, before the message goes out.
    for cache, tags in session.info.pop(_PENDING_KEY, {}).values():
        cache.forget_local(tags)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
