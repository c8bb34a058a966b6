"""Rate limits with the `limits` library, in memory or on Redis (same URL as the cache)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisClusterStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from bigfootlive.errors import TooManyRequests

# `limits`' moving-window acquisition (acquire_moving_window.lua) for several limits in turn: each
# limit is checked and, if not full, counted, exactly as successive `hit`s would; the first full
# one stops it (the ones before it stay counted). Same keys and entries as `limits` keeps, with
# one difference: the hits that have left the window are dropped from the list's tail (newest
# first, so the oldest are at the tail). `limits` trims only to the limit's size, so a key hit
# without pause (its expiry renewed each time) kept the last `limit` hits ever: a high limit
# (a shared address's beacons, 600 or more a minute) grew its list by every hit for as long as
# hits came, the Redis growth the soak benchmark measured. Decisions are the same: a hit that
# left the window never counted.
#
# One call checks the limits of several requests ("groups"), in the order they came: ARGV[1]
# holds the numbers, space-separated (one argument: the client encodes far fewer): the number
# of groups, then per group its timestamp and its number of limits, then per limit its size and
# window (s); KEYS every group's keys in turn. Returns, per group, the position (1-based) of
# the limit that was full, or 0 when every limit took the hit: one group is what one
# `check_all` does on its own, and a call of N groups what N of them in turn would do.
_ACQUIRE_IN_TURN = """
local nums = {}
for token in string.gmatch(ARGV[1], '%S+') do
    nums[#nums + 1] = tonumber(token)
end
local results = {}
local arg = 2
local key = 1
for g = 1, nums[1] do
    local timestamp = nums[arg]
    local count = nums[arg + 1]
    arg = arg + 2
    local full = 0
    for i = 1, count do
        local limit = nums[arg]
        local expiry = nums[arg + 1]
        local name = KEYS[key]
        arg = arg + 2
        key = key + 1
        if full == 0 then
            local entry = redis.call('lindex', name, limit - 1)
            if limit < 1 or (entry and tonumber(entry) >= timestamp - expiry) then
                full = i
            else
                redis.call('lpush', name, timestamp)
                redis.call('ltrim', name, 0, limit - 1)
                local oldest = redis.call('lindex', name, -1)
                while oldest and tonumber(oldest) < timestamp - expiry do
                    redis.call('rpop', name)
                    oldest = redis.call('lindex', name, -1)
                end
                redis.call('expire', name, expiry)
            end
        end
    end
    results[g] = full
end
return results
"""

# Checks waiting for the next call of the script at most (more wait for the one after).
MAX_GROUPS_PER_CALL = 256
# Limits' Redis keys remembered by `RateLimiter._spec` (all forgotten when full).
_SPECS_KEPT = 20_000


class _Coalescer:
    """Sends the `check_all`s of concurrent requests to Redis together: one script call for
    every check that came while the previous call was under way (or in the same turn of the
    event loop), one call at a time. A check is answered when its call returns, so each is
    decided by Redis before its request goes on, as if it had made the call alone: busy, the
    process makes one round trip for many requests instead of one each (the client's CPU per
    round trip was most of a beacon's cost)."""

    def __init__(self, client: Redis, *, owned: bool) -> None:
        self.client = client
        self.owned = owned  # closed with the limiter (else the app's client, closed with it)
        self.script = client.register_script(_ACQUIRE_IN_TURN)
        self._pending: list[tuple[float, list[tuple[str, int, int]], asyncio.Future[int]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def check(self, stamp: float, limits: list[tuple[str, int, int]]) -> int:
        """(key, size, window s) in turn; the position of the full one, or 0."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append((stamp, limits, future))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send(), name="rate-limit-checks")
        return await future

    async def _send(self) -> None:
        try:
            while self._pending:
                taken = self._pending[:MAX_GROUPS_PER_CALL]
                del self._pending[:MAX_GROUPS_PER_CALL]
                keys: list[str] = []
                nums = [str(len(taken))]
                for stamp, limits, _ in taken:
                    nums += (repr(stamp), str(len(limits)))
                    for key, size, window in limits:
                        keys.append(key)
                        nums += (str(size), str(window))
                try:
                    fulls = await self.script(keys=keys, args=[" ".join(nums)])
                except Exception as exc:  # each check raises it (a 503 when Redis is gone)
                    for _, _, future in taken:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, _, future), full in zip(taken, fulls, strict=True):
                    if not future.done():  # its request may have been cancelled meanwhile
                        future.set_result(int(full))
        finally:
            self._sender = None

    async def close(self) -> None:
        sender = self._sender
        if sender is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await sender
        if self.owned:
            await self.client.aclose()


class RateLimiter:
    def __init__(
        self,
        redis_url: str | None,
        prefix: str,
        *,
        cluster: bool = False,
        clock: Callable[[], float] = time.time,
        client: Redis | None = None,
    ) -> None:
        """`client`: a redis-py client on `redis_url` the limiter may share (the app's), for
        the checks `check_all` sends; without it the limiter opens its own."""
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
        self._specs: dict[tuple[str, tuple[str, ...]], tuple[str, int, int]] = {}
        # `check_all` on a single Redis: the script through redis-py (hiredis), coalesced
        self._coalescer: _Coalescer | None = None
        if redis_url and not cluster:
            self._coalescer = (
                _Coalescer(Redis.from_url(redis_url), owned=True)
                if client is None
                else _Coalescer(client, owned=False)
            )

    def _item(self, rule: str) -> RateLimitItem:
        item = self._parsed.get(rule)
        if item is None:
            item = self._parsed[rule] = parse(rule)
        return item

    def _spec(self, bridge: Any, rule: str, identifiers: tuple[str, ...]) -> tuple[str, int, int]:
        """(Redis key, size, window s) of a limit: the key as `limits` makes it, remembered
        (players hit the same few keys over and over; bounded)."""
        spec = self._specs.get((rule, identifiers))
        if spec is None:
            if len(self._specs) >= _SPECS_KEPT:
                self._specs.clear()
            item = self._item(rule)
            key = bridge.prefixed_key(item.key_for(*identifiers))
            spec = self._specs[(rule, identifiers)] = (key, item.amount, item.get_expiry())
        return spec

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
        """`check` each (rule, identifiers) in turn, in one round trip on a single Redis, shared
        with the checks of other requests made meanwhile (`_Coalescer`); one per limit in memory
        or on a cluster, whose keys may live on different nodes."""
        bridge = getattr(self.storage, "bridge", None)
        if self._coalescer is None or bridge is None:
            for rule, identifiers in limits:
                await self.check(rule, *identifiers)
            return
        full = await self._coalescer.check(
            self.clock(), [self._spec(bridge, rule, ids) for rule, ids in limits]
        )
        if full:
            rule, identifiers = limits[full - 1]
            item = self._item(rule)
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
        if self._coalescer is not None:
            await self._coalescer.close()
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        if isinstance(self.storage, RedisClusterStorage) and client is not None:
            await client.aclose()
            return
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            pool.disconnect()
