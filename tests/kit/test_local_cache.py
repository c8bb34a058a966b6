"""`kit.local_cache.LocalCache`: what it keeps, and when it lets go."""

from __future__ import annotations

import uuid

from bigfootlive.kit.backends.memory import MemoryPubSub
from bigfootlive.kit.local_cache import LocalCache
from tests.fixtures import polling

TENANT, OTHER = uuid.uuid4(), uuid.uuid4()


async def _started(pubsub: MemoryPubSub, ttl: float = 600) -> LocalCache[str]:
    cache: LocalCache[str] = LocalCache(pubsub, "test:changed", ttl=ttl)
    await cache.start()
    return cache


async def test_a_heard_invalidation_drops_the_tags_entries_only() -> None:
    pubsub = MemoryPubSub()
    here, there = await _started(pubsub), await _started(pubsub)
    for cache in (here, there):
        cache.put("a", TENANT, "A", cache.generation)
        cache.put("b", OTHER, "B", cache.generation)
    await here.invalidate([TENANT])
    assert (here.get("a"), there.get("a")) == (None, None)
    assert (here.get("b"), there.get("b")) == ("B", "B")


async def test_a_read_that_raced_a_change_is_not_kept() -> None:
    cache = await _started(MemoryPubSub())
    generation = cache.generation  # taken before the (slow) read
    await cache.invalidate([OTHER])  # any change heard meanwhile
    cache.put("a", TENANT, "stale?", generation)
    assert cache.get("a") is None
    cache.put("a", TENANT, "A", cache.generation)
    assert cache.get("a") == "A"


async def test_nothing_is_kept_before_it_listens() -> None:
    cache: LocalCache[str] = LocalCache(MemoryPubSub(), "test:changed", ttl=600)
    cache.put("a", TENANT, "A", cache.generation)
    assert cache.get("a") is None


async def test_an_entry_lives_ttl_at_most() -> None:
    cache = await _started(MemoryPubSub(), ttl=0.05)
    cache.put("a", TENANT, "A", cache.generation)
    assert cache.get("a") == "A"
    await polling.until(lambda: cache.get("a") is None, within=2)


async def test_a_message_it_cannot_read_drops_everything() -> None:
    pubsub = MemoryPubSub()
    cache = await _started(pubsub)
    cache.put("a", TENANT, "A", cache.generation)
    await pubsub.publish("test:changed", b"not-a-uuid")
    assert cache.get("a") is None


class _DownAtFirst(MemoryPubSub):
    """A pub/sub whose first subscription fails, as Redis down when the process starts."""

    def __init__(self) -> None:
        super().__init__()
        self.refusals = 1

    async def subscribe(self, channel, handler):  # type: ignore[no-untyped-def]
        if self.refusals:
            self.refusals -= 1
            raise ConnectionError("pub/sub unreachable")
        return await super().subscribe(channel, handler)


async def test_an_unreachable_pub_sub_at_start_keeps_nothing_until_it_subscribes() -> None:
    pubsub = _DownAtFirst()
    cache = await _started(pubsub)  # does not raise: the process starts without Redis
    cache.put("a", TENANT, "A", cache.generation)
    assert cache.get("a") is None  # nothing kept while no invalidation could be heard
    await polling.until(lambda: cache._unsubscribe is not None, within=5)
    cache.put("a", TENANT, "A", cache.generation)
    assert cache.get("a") == "A"
    await cache.stop()
