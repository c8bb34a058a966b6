"""Cache/counters and pub/sub, in-process or on Redis, chosen by `REDIS_URL` (and
`REDIS_CLUSTER` or a `redis+cluster://` URL for a Redis Cluster)."""

from __future__ import annotations

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


__all__ = ["Cache", "MemoryCache", "MemoryPubSub", "MessageHandler", "PubSub", "open_backends"]
