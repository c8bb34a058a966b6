"""Redis backends: one connection pool for commands (and a few connections of its own for the
cache's coalesced round trips, `redis_wire`), one pub/sub connection per process."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections import defaultdict
from collections.abc import Mapping, Sequence

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub as RedisPubSubConn
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from bigfootlive.kit.backends.base import MessageHandler, Unsubscribe
from bigfootlive.kit.backends.redis_wire import RedisWire
from bigfootlive.kit.coalesce import Coalesced

log = structlog.get_logger(__name__)


async def _call(handler: MessageHandler, message: bytes) -> None:
    await handler(message)


# KEYS[1] the counter, KEYS[2..] the members' keys; ARGV[1] their TTL, ARGV[2] the counter's
# (ms). One script: the members and the count they add can never disagree.
_ADD_COUNT = """
local added = 0
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'PX', ARGV[1], 'NX') then added = added + 1 end
end
local value = redis.call('INCRBY', KEYS[1], added)
redis.call('PEXPIRE', KEYS[1], ARGV[2], 'NX')
return value
"""

# KEYS: every group's entries in turn; ARGV[1] the number of groups, then for each group: its
# number of entries, their value, their TTL (ms), its number of messages, then those (channel,
# message) pairs. Each group's entries are set, then its messages published, in order: the
# writes of `set_then_publish` of concurrent callers in one round trip.
_SET_MANY_PUBLISH_GROUPS = """
local k, a = 1, 2
for g = 1, tonumber(ARGV[1]) do
  local entries, messages = tonumber(ARGV[a]), tonumber(ARGV[a + 3])
  local value, ttl = ARGV[a + 1], ARGV[a + 2]
  a = a + 4
  for i = 1, entries do
    redis.call('SET', KEYS[k], value, 'PX', ttl)
    k = k + 1
  end
  for i = 1, messages do
    redis.call('PUBLISH', ARGV[a], ARGV[a + 1])
    a = a + 2
  end
end
return 0
"""

# Calls of concurrent callers sent together at most (more wait for the next round trip).
MAX_CALLS_PER_ROUND_TRIP = 256


_Write = tuple[list[str], bytes, int, Sequence[tuple[str, bytes]]]


class RedisCache:
    def __init__(self, client: Redis | RedisCluster, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._add_count = client.register_script(_ADD_COUNT)
        self._set_many_publish_groups = client.register_script(_SET_MANY_PUBLISH_GROUPS)
        # The coalesced round trips on a standalone Redis, with less client code around each
        # (a cluster's client routes them by their keys: redis-py's own path).
        self.wire = RedisWire(client) if isinstance(client, Redis) else None
        self._reads = Coalesced(self._mget_all, "cache-reads", MAX_CALLS_PER_ROUND_TRIP)
        self.writes_then_news = Coalesced(
            self._set_publish_all, "cache-writes", MAX_CALLS_PER_ROUND_TRIP
        )

    def key(self, key: str) -> str:
        return self.prefix + key

    async def get(self, key: str) -> bytes | None:
        value = await self.client.get(self.key(key))
        return value if value is None or isinstance(value, bytes) else value.encode()

    async def mget(self, *keys: str) -> list[bytes | None]:
        if not keys:
            return []
        values = await self._reads([self.key(k) for k in keys])
        return [v if v is None or isinstance(v, bytes) else str(v).encode() for v in values]

    async def _mget_all(self, reads: list[list[str]]) -> list[list[object]]:
        keys = [k for keys in reads for k in keys]
        if self.wire is None:
            values: list[object] = list(await self.client.mget(keys))
        else:
            values = list(await self.wire.call("MGET", *keys))
        answers: list[list[object]] = []
        start = 0
        for keys in reads:
            answers.append(values[start : start + len(keys)])
            start += len(keys)
        return answers

    async def _set_publish_all(self, writes: list[_Write]) -> list[None]:
        """Each (full keys, value, TTL ms, (full channel, message) pairs) in one script call."""
        keys: list[str] = []
        args: list[bytes | str | int] = [len(writes)]
        for entries, value, ttl_ms, messages in writes:
            keys += entries
            args += [len(entries), value, ttl_ms, len(messages)]
            for channel, message in messages:
                args += [channel, message]
        await self._run_script(self._set_many_publish_groups, keys, args)
        return [None] * len(writes)

    async def _run_script(
        self, script: AsyncScript, keys: list[str], args: list[bytes | str | int]
    ) -> object:
        """`script(keys=keys, args=args)`, by its SHA on `wire` when there is one (redis-py
        loads it on a server that does not know it yet)."""
        if self.wire is not None:
            try:
                return await self.wire.call("EVALSHA", script.sha, len(keys), *keys, *args)
            except NoScriptError:
                pass
        return await script(keys=keys, args=args)

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        px = None if ttl is None else max(1, int(ttl * 1000))
        await self.client.set(self.key(key), value, px=px)

    async def set_many(self, items: Mapping[str, bytes], *, ttl: float | None = None) -> None:
        if not items:
            return
        px = None if ttl is None else max(1, int(ttl * 1000))
        if len(items) == 1:  # a pipeline costs a single SET ~20 % more CPU (a sign-in's stamp)
            [(key, value)] = items.items()
            await self.client.set(self.key(key), value, px=px)
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for key, value in items.items():
                pipe.set(self.key(key), value, px=px)
            await pipe.execute()

    async def add_many_count(
        self, keys: Sequence[str], counter: str, *, ttl: float, counter_ttl: float
    ) -> int:
        full = [self.key(counter), *(self.key(k) for k in keys)]
        ms = (max(1, int(ttl * 1000)), max(1, int(counter_ttl * 1000)))
        return int(await self._add_count(keys=full, args=ms))

    async def add_many(self, items: Mapping[str, bytes], *, ttl: float | None = None) -> None:
        px = None if ttl is None else max(1, int(ttl * 1000))
        async with self.client.pipeline(transaction=False) as pipe:
            for key, value in items.items():
                pipe.set(self.key(key), value, px=px, nx=True)
            await pipe.execute()

    async def add(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        px = None if ttl is None else max(1, int(ttl * 1000))
        return bool(await self.client.set(self.key(key), value, px=px, nx=True))

    async def delete(self, *keys: str) -> None:
        if keys:
            await self.client.delete(*(self.key(k) for k in keys))

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        full = self.key(key)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.incrby(full, amount)
            if ttl is not None:
                pipe.pexpire(full, max(1, int(ttl * 1000)), nx=True)
            results = await pipe.execute()
        return int(results[0])

    async def hset(self, key: str, field: str, value: bytes, *, ttl: float | None = None) -> None:
        full = self.key(key)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(full, field, value)
            if ttl is not None:
                pipe.pexpire(full, max(1, int(ttl * 1000)))
            await pipe.execute()

    async def hgetall(self, key: str) -> dict[str, bytes]:
        raw = await self.client.hgetall(self.key(key))
        return {
            (k.decode() if isinstance(k, bytes) else str(k)): (
                v if isinstance(v, bytes) else str(v).encode()
            )
            for k, v in raw.items()
        }

    async def hdel(self, key: str, *fields: str) -> None:
        if fields:
            await self.client.hdel(self.key(key), *fields)

    async def hincrby(
        self, key: str, field: str, amount: int = 1, *, ttl: float | None = None
    ) -> int:
        full = self.key(key)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hincrby(full, field, amount)
            if ttl is not None:
                pipe.pexpire(full, max(1, int(ttl * 1000)), nx=True)
            results = await pipe.execute()
        return int(results[0])

    async def pfadd(self, key: str, *items: str, ttl: float | None = None) -> None:
        if not items:
            return
        full = self.key(key)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.pfadd(full, *items)
            if ttl is not None:
                pipe.pexpire(full, max(1, int(ttl * 1000)), nx=True)
            await pipe.execute()

    async def pfcount(self, key: str) -> int:
        return int(await self.client.pfcount(self.key(key)))

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        if self.wire is not None:
            await self.wire.close()
        await self.client.aclose()


class RedisPubSub:
    """Subscribes each channel once per process and dispatches to local handlers. `sharded`:
    SSUBSCRIBE on this client's node (Redis 7 sharded pub/sub; the cluster backend keeps one
    per node and publishes with SPUBLISH)."""

    def __init__(self, client: Redis, prefix: str, *, sharded: bool = False) -> None:
        self.client = client
        self.prefix = prefix
        self.sharded = sharded
        self._handlers: dict[str, list[tuple[MessageHandler, contextvars.Context]]] = defaultdict(
            list
        )
        self._conn: RedisPubSubConn | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def publish(self, channel: str, message: bytes) -> None:
        await self.client.publish(self.prefix + channel, message)

    async def set_then_publish(
        self,
        cache: object,
        keys: Sequence[str],
        value: bytes,
        *,
        ttl: float,
        messages: Sequence[tuple[str, bytes]],
    ) -> bool:
        """Set `keys` to `value` in `cache`, then publish `messages`, in one round trip (a
        script) when `cache` is a plain `RedisCache` on this very client (not sharded pub/sub,
        not a cluster: a script's keys and channels must live on one node). False when it
        cannot (nothing done: the caller does it in turn)."""
        if self.sharded or type(cache) is not RedisCache or cache.client is not self.client:
            return False
        news = [(self.prefix + channel, message) for channel, message in messages]
        write = ([cache.key(k) for k in keys], value, max(1, int(ttl * 1000)), news)
        await cache.writes_then_news(write)  # with concurrent callers' in one round trip
        return True

    async def subscribe(self, channel: str, handler: MessageHandler) -> Unsubscribe:
        full = self.prefix + channel
        async with self._lock:
            if self._conn is None:
                self._conn = self.client.pubsub(ignore_subscribe_messages=True)
            first = not self._handlers[full]
            # Each handler runs in its subscriber's context (its row scope, its request id),
            # not in the reader's, which is whichever task happened to subscribe first.
            self._handlers[full].append((handler, contextvars.copy_context()))
            if first:
                if self.sharded:
                    await self._conn.ssubscribe(full)
                else:
                    await self._conn.subscribe(full)
            if self._reader is None or self._reader.done():
                self._reader = asyncio.create_task(
                    self._read(), name="redis-pubsub-reader", context=contextvars.Context()
                )

        async def unsubscribe() -> None:
            async with self._lock:
                handlers = self._handlers.get(full)
                mine = [entry for entry in handlers or () if entry[0] is handler]
                if handlers and mine:
                    handlers.remove(mine[0])
                    if not handlers:
                        del self._handlers[full]
                        if self._conn is not None and self.sharded:
                            await self._conn.sunsubscribe(full)
                        elif self._conn is not None:
                            await self._conn.unsubscribe(full)

        return unsubscribe

    async def _read(self) -> None:
        while self._conn is not None:
            try:
                message = await self._conn.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("redis_pubsub_read_failed")
                await asyncio.sleep(0.5)
                continue
            if message is None or message.get("type") not in ("message", "smessage"):
                continue
            channel = message["channel"]
            channel = channel.decode() if isinstance(channel, bytes) else channel
            for handler, context in list(self._handlers.get(channel, ())):
                try:
                    await asyncio.create_task(_call(handler, message["data"]), context=context)
                except Exception:
                    log.exception("pubsub_handler_failed", channel=channel)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._conn is not None:
            await self._conn.aclose()  # type: ignore[no-untyped-call]
        self._handlers.clear()


def open_redis_backends(url: str, prefix: str) -> tuple[RedisCache, RedisPubSub]:
    client = Redis.from_url(url, health_check_interval=30)
    return RedisCache(client, prefix), RedisPubSub(client, prefix)
