"""The small interfaces every backend implements. Keys and channels are given unprefixed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

MessageHandler = Callable[[bytes], Awaitable[None]]
Unsubscribe = Callable[[], Awaitable[None]]


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None: ...

    async def add(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        """Set only if absent; True when this call set it."""
        ...

    async def delete(self, *keys: str) -> None: ...

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        """Add to a counter; `ttl` applies when the counter is created."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class PubSub(Protocol):
    async def publish(self, channel: str, message: bytes) -> None: ...

    async def subscribe(self, channel: str, handler: MessageHandler) -> Unsubscribe:
        """Call `handler` for each message on `channel` until the returned function is awaited."""
        ...

    async def close(self) -> None: ...
