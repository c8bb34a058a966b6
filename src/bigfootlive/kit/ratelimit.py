"""Rate limits with the `limits` library, in memory or on Redis (same URL as the cache)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisClusterStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from bigfootlive.errors import TooManyRequests

# `limits`' moving-window acquisition (acquire_moving_window.lua) for several limits in turn, in
# one round trip: each limit is checked and, if not full, counted, exactly as successive `hit`s
# would; the first full one stops it (the ones before it stay counted). Returns its position
# (1-based), or 0 when every limit took the hit. Same keys and entries as `limits` keeps, with
# one difference: the hits that have left the window are dropped from the list's tail (newest
# first, so the oldest are at the tail). `limits` trims only to the limit's size, so a key hit
# without pause (its expiry renewed each time) kept the last `limit` hits ever: a high limit
# (a shared address's beacons, 600 or more a minute) grew its list by every hit for as long as
# hits came, the Redis growth the soak benchmark measured. Decisions are the same: a hit that
# left the window never counted.
_ACQUIRE_IN_TURN = """
local timestamp = tonumber(ARGV[1])
for i = 1, #KEYS do
    local limit = tonumber(ARGV[2 * i])
    local expiry = tonumber(ARGV[2 * i + 1])
    local entry = redis.call('lindex', KEYS[i], limit - 1)
    if limit < 1 or (entry and tonumber(entry) >= timestamp - expiry) then
        return i
    end
    redis.call('lpush', KEYS[i], timestamp)
    redis.call('ltrim', KEYS[i], 0, limit - 1)
    local oldest = redis.call('lindex', KEYS[i], -1)
    while oldest and tonumber(oldest) < timestamp - expiry do
        redis.call('rpop', KEYS[i])
        oldest = redis.call('lindex', KEYS[i], -1)
    end
    redis.call('expire', KEYS[i], expiry)
end
return 0
"""


class RateLimiter:
    def __init__(
        self,
        redis_url: str | None,
        prefix: str,
        *,
        cluster: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock  # the time `check_all` stamps its hits with
        self.storage: Storage
        if redis_url and cluster:  # each limit is one key (one slot): no hash tag needed
            uri = "async+redis+cluster://" + urlsplit(redis_url).netloc
            self.storage = RedisClusterStorage(
                uri, implementation="redispy", key_prefix=prefix + "rl"
            )
        elif redis_url:
            self.storage = RedisStorage(redis_url, key_prefix=prefix + "rl")
        else:
            self.storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(self.storage)
        self._parsed: dict[str, RateLimitItem] = {}
        self._in_turn: Any = None  # the registered _ACQUIRE_IN_TURN (single Redis only)

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

    async def check_all(self, *limits: tuple[str, tuple[str, ...]]) -> None:
        """`check` each (rule, identifiers) in turn, in one round trip on a single Redis (one
        per limit in memory or on a cluster, whose keys may live on different nodes)."""
        bridge = getattr(self.storage, "bridge", None)
        one_node = isinstance(self.storage, RedisStorage) and not isinstance(
            self.storage, RedisClusterStorage
        )  # a cluster's keys may live on different nodes: no one script for them
        if not one_node or bridge is None:
            for rule, identifiers in limits:
                await self.check(rule, *identifiers)
            return
        items = [(self._item(rule), identifiers) for rule, identifiers in limits]
        if self._in_turn is None:
            self._in_turn = bridge.get_connection().register_script(_ACQUIRE_IN_TURN)
        args: list[float] = [self.clock()]
        for item, _ in items:
            args += [item.amount, item.get_expiry()]
        keys = [bridge.prefixed_key(item.key_for(*ids)) for item, ids in items]
        full = int(await self._in_turn.execute(keys, args))
        if full:
            item, identifiers = items[full - 1]
            stats = await self._limiter.get_window_stats(item, *identifiers)
            raise TooManyRequests(retry_after=max(1, int(stats.reset_time - time.time())))

    async def reset(self) -> None:
        await self.storage.reset()

    async def close(self) -> None:
        """Close the storage's Redis connections (`limits` has no close of its own).

        Left open, they are closed by the garbage collector at a random moment, with a
        ResourceWarning whose traceback formatting can break an `ast.parse` running at that
        moment on Python 3.11.7 (CPython gh-106905), e.g. in tests/test_architecture.py.
        """
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        if isinstance(self.storage, RedisClusterStorage) and client is not None:
            await client.aclose()
            return
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            pool.disconnect()
