"""One load per key at a time in a process (`SingleFlight`): the callers that want the same
missing entry while it is being loaded wait for that load instead of each making their own (a
cold cache entry wanted by many concurrent requests: one database read, not one per request).

Unlike `kit.coalesce.Coalesced`, which sends each call after its caller made it (so it sees
every write completed before), a waiter here takes the answer of a load that began before it
came: use it only where that answer is what the caller would have taken from the cache anyway
(an entry that invalidation overwrites in the cache, not in the loader)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, MutableMapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """`await flight(key, load)`: `load()` if no load of `key` is under way, else that load's
    result. The load runs in a task of its own, so a caller that is cancelled (its client went
    away) cancels neither the load nor the other waiters. A failed load fails every waiter
    with its exception, and is forgotten: the next caller loads again. Nothing is kept once a
    load has ended (the cache keeps results; this only joins concurrent loads)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loads: dict[Hashable, asyncio.Task[T]] = {}

    @classmethod
    def kept_in(cls, store: MutableMapping[Any, Any], name: str) -> SingleFlight[T]:
        """The flight `name` of a process-wide `store` (e.g. `Database.batches`: one per app),
        made there when first wanted."""
        flight: SingleFlight[T] | None = store.get(name)
        if flight is None:
            flight = store[name] = cls(name)
        return flight

    def __len__(self) -> int:
        """Loads under way."""
        return len(self._loads)

    async def __call__(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        task = self._loads.get(key)
        if task is None:
            task = asyncio.create_task(self._run(key, load), name=self._name)
            task.add_done_callback(_retrieved)
            self._loads[key] = task
        return await asyncio.shield(task)

    async def _run(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        try:
            return await load()
        finally:
            if self._loads.get(key) is asyncio.current_task():
                del self._loads[key]


def _retrieved(task: asyncio.Task[T]) -> None:
    """Its exception counts as heard even if every waiter went away before it came."""
    if not task.cancelled():
        task.exception()
