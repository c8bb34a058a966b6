"""In-process backends for the embedded default: one process, nothing to install."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence

import structlog

from bigfootlive.kit.backends.base import MessageHandler, Unsubscribe

log = structlog.get_logger(__name__)


class MemoryCache:
    def __init__(self) -> None:
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._hashes: dict[str, tuple[dict[str, bytes], float | None]] = {}
        self._sets: dict[str, tuple[set[str], float | None]] = {}

    def _live(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= time.monotonic():
            del self._data[key]
            return None
        return value

    @staticmethod
    def _deadline(ttl: float | None) -> float | None:
        return None if ttl is None else time.monotonic() + ttl

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def mget(self, *keys: str) -> list[bytes | None]:
        return [self._live(key) for key in keys]

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        self._data[key] = (value, self._deadline(ttl))

    async def set_many(self, items: Mapping[str, bytes], *, ttl: float | None = None) -> None:
        deadline = self._deadline(ttl)
        for key, value in items.items():
            self._data[key] = (value, deadline)

    async def add_many_count(
        self, keys: Sequence[str], counter: str, *, ttl: float, counter_ttl: float
    ) -> int:
        added = 0
        for key in keys:
            if self._live(key) is None:
                self._data[key] = (b"1", self._deadline(ttl))
                added += 1
        return await self.incr(counter, added, ttl=counter_ttl)

    async def add_many(self, items: Mapping[str, bytes], *, ttl: float | None = None) -> None:
        for key, value in items.items():
            await self.add(key, value, ttl=ttl)

    async def add(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        if self._live(key) is not None:
            return False
        self._data[key] = (value, self._deadline(ttl))
        return True

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._data.pop(key, None)

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        current = self._live(key)
        if current is None:
            value, deadline = amount, self._deadline(ttl)
        else:
            value, deadline = int(current) + amount, self._data[key][1]
        self._data[key] = (str(value).encode(), deadline)
        return value

    def _hash(self, key: str, ttl: float | None, *, reset_ttl: bool) -> dict[str, bytes]:
        item = self._hashes.get(key)
        if item is not None and item[1] is not None and item[1] <= time.monotonic():
            item = None
        if item is None:
            item = self._hashes[key] = ({}, self._deadline(ttl))
        elif reset_ttl and ttl is not None:
            item = self._hashes[key] = (item[0], self._deadline(ttl))
        return item[0]

    async def hset(self, key: str, field: str, value: bytes, *, ttl: float | None = None) -> None:
        self._hash(key, ttl, reset_ttl=True)[field] = value

    async def hgetall(self, key: str) -> dict[str, bytes]:
        item = self._hashes.get(key)
        if item is None or (item[1] is not None and item[1] <= time.monotonic()):
            self._hashes.pop(key, None)
            return {}
        return dict(item[0])

    async def hdel(self, key: str, *fields: str) -> None:
        item = self._hashes.get(key)
        if item is not None:
            for field in fields:
                item[0].pop(field, None)

    async def hincrby(
        self, key: str, field: str, amount: int = 1, *, ttl: float | None = None
    ) -> int:
        values = self._hash(key, ttl, reset_ttl=False)
        value = int(values.get(field, b"0")) + amount
        values[field] = str(value).encode()
        return value

    async def pfadd(self, key: str, *items: str, ttl: float | None = None) -> None:
        item = self._sets.get(key)
        if item is None or (item[1] is not None and item[1] <= time.monotonic()):
            item = self._sets[key] = (set(), self._deadline(ttl))
        item[0].update(items)

    async def pfcount(self, key: str) -> int:
        item = self._sets.get(key)
        if item is None or (item[1] is not None and item[1] <= time.monotonic()):
            return 0
        return len(item[0])

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._data.clear()
        self._hashes.clear()
        self._sets.clear()


class MemoryPubSub:
    def __init__(self) -> None:
        self._handlers: dict[str, list[MessageHandler]] = defaultdict(list)

    async def publish(self, channel: str, message: bytes) -> None:
        for handler in list(self._handlers.get(channel, ())):
            try:
                await handler(message)
            except Exception:
                log.exception("pubsub_handler_failed", channel=channel)

    async def subscribe(self, channel: str, handler: MessageHandler) -> Unsubscribe:
        self._handlers[channel].append(handler)

        async def unsubscribe() -> None:
            handlers = self._handlers.get(channel)
            if handlers and handler in handlers:
                handlers.remove(handler)
                if not handlers:
                    del self._handlers[channel]

        return unsubscribe

    async def close(self) -> None:
        self._handlers.clear()
        await asyncio.sleep(0)
