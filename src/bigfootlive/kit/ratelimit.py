"""Rate limits with the `limits` library, in memory or on Redis (same URL as the cache)."""

from __future__ import annotations

import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from bigfootlive.errors import TooManyRequests


class RateLimiter:
    def __init__(self, redis_url: str | None, prefix: str) -> None:
        self.storage: Storage = (
            RedisStorage(redis_url, key_prefix=prefix + "rl") if redis_url else MemoryStorage()
        )
        self._limiter = MovingWindowRateLimiter(self.storage)
        self._parsed: dict[str, RateLimitItem] = {}

    def _item(self, rule: str) -> RateLimitItem:
        item = self._parsed.get(rule)
        if item is None:
            item = self._parsed[rule] = parse(rule)
        return item

    async def hit(self, rule: str, *identifiers: str) -> bool:
        """Count one hit; False when the limit is exceeded."""
        return bool(await self._limiter.hit(self._item(rule), *identifiers))

    async def check(self, rule: str, *identifiers: str) -> None:
        """Count one hit and raise 429 when the limit is exceeded."""
        item = self._item(rule)
        if not await self._limiter.hit(item, *identifiers):
            stats = await self._limiter.get_window_stats(item, *identifiers)
            retry = max(1, int(stats.reset_time - time.time()))
            raise TooManyRequests(retry_after=retry)

    async def reset(self) -> None:
        await self.storage.reset()

    async def close(self) -> None:
        """Close the storage's Redis connections (`limits` has no close of its own).

        Left open, they are closed by the garbage collector at a random moment, with a
        ResourceWarning whose traceback formatting can break an `ast.parse` running at that
        moment on Python 3.11.7 (CPython gh-106905), e.g. in tests/test_architecture.py.
        """
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            pool.disconnect()
