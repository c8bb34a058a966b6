"""A cache view whose first reads of known keys were answered by one MGET.

A decision that reads several cache entries (an API key, an event snapshot, a tombstone) asks
for all of them in one round trip up front, then runs its ordinary code against this view:
a `get` of a prefetched key is answered from memory, every other call goes to the cache, and
writes and deletes keep the view in step with what was written. The view lives for one
decision only, so it is never staler than the MGET that filled it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bigfootlive.kit.backends.base import Cache


class PrefetchedCache:
    def __init__(self, cache: Cache, values: Mapping[str, bytes | None]) -> None:
        self.cache = cache
        self._values = dict(values)

    @classmethod
    async def load(cls, cache: Cache, keys: Sequence[str]) -> PrefetchedCache:
        unique = list(dict.fromkeys(keys))
        values = await cache.mget(*unique) if unique else []
        return cls(cache, dict(zip(unique, values, strict=True)))

    def _forget(self, *keys: str) -> None:
        for key in keys:
            self._values.pop(key, None)

    async def get(self, key: str) -> bytes | None:
        if key in self._values:
            return self._values[key]
        return await self.cache.get(key)

    async def mget(self, *keys: str) -> list[bytes | None]:
        missing = [k for k in keys if k not in self._values]
        if missing:
            self._values.update(zip(missing, await self.cache.mget(*missing), strict=True))
        return [self._values[k] for k in keys]

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        await self.cache.set(key, value, ttl=ttl)
        self._values[key] = value

    async def set_many(self, items: Mapping[str, bytes], *, ttl: float | None = None) -> None:
        await self.cache.set_many(items, ttl=ttl)
        self._values.update(items)

    async def add_many_count(
        self, keys: Sequence[str], counter: str, *, ttl: float, counter_ttl: float
    ) -> int:
        self._forget(*keys, counter)
        return await self.cache.add_many_count(keys, counter, ttl=ttl, counter_ttl=counter_ttl)

    async def add_many(self, items: Mapping[str, bytes], *, ttl: float | None = None) -> None:
        self._forget(*items)
        await self.cache.add_many(items, ttl=ttl)

    async def add(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        self._forget(key)
        return await self.cache.add(key, value, ttl=ttl)

    async def delete(self, *keys: str) -> None:
        self._forget(*keys)
        await self.cache.delete(*keys)

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        self._forget(key)
        return await self.cache.incr(key, amount, ttl=ttl)

    async def hset(self, key: str, field: str, value: bytes, *, ttl: float | None = None) -> None:
        await self.cache.hset(key, field, value, ttl=ttl)

    async def hgetall(self, key: str) -> dict[str, bytes]:
        return await self.cache.hgetall(key)

    async def hdel(self, key: str, *fields: str) -> None:
        await self.cache.hdel(key, *fields)

    async def hincrby(
        self, key: str, field: str, amount: int = 1, *, ttl: float | None = None
    ) -> int:
        return await self.cache.hincrby(key, field, amount, ttl=ttl)

    async def pfadd(self, key: str, *items: str, ttl: float | None = None) -> None:
        await self.cache.pfadd(key, *items, ttl=ttl)

    async def pfcount(self, key: str) -> int:
        return await self.cache.pfcount(key)

    async def ping(self) -> None:
        await self.cache.ping()

    async def close(self) -> None:
        """The view owns nothing; the cache it reads is closed by its owner."""
