"""The small interfaces every backend implements. Keys and channels are given unprefixed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

MessageHandler = Callable[[bytes], Awaitable[None]]
Unsubscribe = Callable[[], Awaitable[None]]


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def mget(self, *keys: str) -> list[bytes | None]:
        """Several values in one round trip, in the order of `keys` (None where absent)."""
        ...

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None: ...

    async def set_many(self, items: Mapping[str, bytes], *, ttl: float | None = None) -> None:
        """Set every item (all with the same `ttl`) in one round trip."""
        ...

    async def add_many_count(
        self, keys: Sequence[str], counter: str, *, ttl: float, counter_ttl: float
    ) -> int:
        """Set each of `keys` only if absent (`ttl`), add the number newly set to `counter`
        (created with `counter_ttl`) and return the counter, in one round trip and atomically.
        Deduplicates members fleet-wide: a key stands for one member seen once."""
        ...

    async def add(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        """Set only if absent; True when this call set it."""
        ...

    async def add_many(self, items: Mapping[str, bytes], *, ttl: float | None = None) -> None:
        """Set each item that is absent (all with the same `ttl`), in one round trip: a fill
        from a read that may be older than what a writer has put there since."""
        ...

    async def delete(self, *keys: str) -> None: ...

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        """Add to a counter; `ttl` applies when the counter is created."""
        ...

    async def hset(self, key: str, field: str, value: bytes, *, ttl: float | None = None) -> None:
        """Set one field of a hash; `ttl` (re)applies to the whole hash."""
        ...

    async def hgetall(self, key: str) -> dict[str, bytes]: ...

    async def hdel(self, key: str, *fields: str) -> None: ...

    async def hincrby(
        self, key: str, field: str, amount: int = 1, *, ttl: float | None = None
    ) -> int:
        """Add to a hash field; `ttl` applies when the hash is created."""
        ...

    async def pfadd(self, key: str, *items: str, ttl: float | None = None) -> None:
        """Add to a cardinality estimator (HyperLogLog on Redis; an exact set in memory)."""
        ...

    async def pfcount(self, key: str) -> int: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class PubSub(Protocol):
    async def publish(self, channel: str, message: bytes) -> None: ...

    async def subscribe(self, channel: str, handler: MessageHandler) -> Unsubscribe:
        """Call `handler` for each message on `channel` until the returned function is awaited."""
        ...

    async def close(self) -> None: ...
