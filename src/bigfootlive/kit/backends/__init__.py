"""Cache/counters and pub/sub, in-process or on Redis, chosen by `REDIS_URL` (and
`REDIS_CLUSTER` or a `redis+cluster://` URL for a Redis Cluster)."""

from __future__ import annotations

from collections.abc import Sequence

from bigfootlive.config import Settings
from bigfootlive.kit.backends.base import Cache, MessageHandler, PubSub
from bigfootlive.kit.backends.memory import MemoryCache, MemoryPubSub


def open_backends(settings: Settings) -> tuple[Cache, PubSub]:
    if settings.redis_url and settings.uses_redis_cluster:
        from bigfootlive.kit.backends.redis_cluster import open_cluster_backends

        return open_cluster_backends(settings.redis_url, settings.redis_key_prefix)
    if settings.redis_url:
        from bigfootlive.kit.backends.redis import open_redis_backends

        return open_redis_backends(settings.redis_url, settings.redis_key_prefix)
    return MemoryCache(), MemoryPubSub()


async def set_then_publish(
    cache: Cache,
    pubsub: PubSub,
    keys: Sequence[str],
    value: bytes,
    *,
    ttl: float,
    messages: Sequence[tuple[str, bytes]],
) -> None:
    """Set every one of `keys` to `value` (with `ttl`), then publish each (channel, message):
    one round trip when both are the same standalone Redis, else a `set_many` and a publish
    after another (in memory, on a cluster)."""
    combined = getattr(pubsub, "set_then_publish", None)
    if combined is not None and await combined(cache, keys, value, ttl=ttl, messages=messages):
        return
    await cache.set_many(dict.fromkeys(keys, value), ttl=ttl)
    for channel, message in messages:
        await pubsub.publish(channel, message)


__all__ = [
    "Cache",
    "MemoryCache",
    "MemoryPubSub",
    "MessageHandler",
    "PubSub",
    "open_backends",
    "set_then_publish",
]
