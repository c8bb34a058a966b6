"""The cache, pub/sub and rate-limit contracts, on Redis and in-process alike."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from limits import parse
from redis.asyncio import Redis

from bigfootlive.authz.scoping import tenant_scope
from bigfootlive.errors import TooManyRequests
from bigfootlive.kit.backends import MemoryCache, MemoryPubSub
from bigfootlive.kit.backends.prefetch import PrefetchedCache
from bigfootlive.kit.backends.redis import open_redis_backends
from bigfootlive.kit.ratelimit import RateLimiter
from bigfootlive.row_security import NO_ROWS, RowScope, current_row_scope, row_scope
from tests.fixtures import services


@pytest.fixture
async def backends(backend) -> AsyncIterator[tuple]:
    if backend == "sqlite":
        yield MemoryCache(), MemoryPubSub(), None
        return
    services.require(services.port_open("127.0.0.1", 6379), "Redis")
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    cache, pubsub = open_redis_backends(services.REDIS_URL, prefix)
    yield cache, pubsub, prefix
    await pubsub.close()
    await cache.close()
    await services.redis_delete_prefix(services.REDIS_URL, prefix)


async def test_cache_get_set_add_delete_and_ttl(backends):
    cache, _, _ = backends
    assert await cache.get("k") is None
    await cache.set("k", b"v")
    assert await cache.get("k") == b"v"
    assert await cache.add("k", b"other") is False
    assert await cache.add("k2", b"x", ttl=0.05) is True
    await asyncio.sleep(0.1)
    assert await cache.get("k2") is None
    await cache.delete("k")
    assert await cache.get("k") is None


async def test_mget_answers_in_the_order_asked_with_none_where_absent(backends):
    cache, _, _ = backends
    await cache.set("a", b"1")
    await cache.set("c", b"3")
    assert await cache.mget("c", "b", "a") == [b"3", None, b"1"]
    assert await cache.mget() == []


async def test_counters_increment_and_keep_their_first_ttl(backends):
    cache, _, _ = backends
    assert await cache.incr("c", ttl=0.2) == 1
    assert await cache.incr("c", 5, ttl=10) == 6
    await asyncio.sleep(0.3)
    assert await cache.incr("c") == 1


async def test_pubsub_delivers_to_every_subscriber_until_unsubscribed(backends):
    _, pubsub, _ = backends
    got_a: list[bytes] = []
    got_b: list[bytes] = []

    async def a(message: bytes) -> None:
        got_a.append(message)

    async def b(message: bytes) -> None:
        got_b.append(message)

    stop_a = await pubsub.subscribe("chan", a)
    await pubsub.subscribe("chan", b)
    await pubsub.publish("chan", b"one")
    await _eventually(lambda: got_a == [b"one"] and got_b == [b"one"])
    await stop_a()
    await pubsub.publish("chan", b"two")
    await _eventually(lambda: got_b == [b"one", b"two"])
    assert got_a == [b"one"]


async def test_redis_pubsub_reaches_another_connection():
    services.require(services.port_open("127.0.0.1", 6379), "Redis")
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    (_, one), (_, two) = (
        open_redis_backends(services.REDIS_URL, prefix),
        open_redis_backends(services.REDIS_URL, prefix),
    )
    received: list[bytes] = []

    async def handler(message: bytes) -> None:
        received.append(message)

    await two.subscribe("event:1", handler)
    await asyncio.sleep(0.05)
    await one.publish("event:1", b"hello")
    await _eventually(lambda: received == [b"hello"])
    await one.close()
    await two.close()


async def test_redis_pubsub_handlers_act_in_their_own_subscribers_scope():
    """Whoever subscribes first (a request acting for one tenant, the app's start) must not lend
    its row scope to every handler of the process: each handler runs in its subscriber's."""
    services.require(services.port_open("127.0.0.1", 6379), "Redis")
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    cache, pubsub = open_redis_backends(services.REDIS_URL, prefix)
    tenant = uuid.uuid4()
    scopes: dict[str, RowScope] = {}

    def handler(name: str):  # type: ignore[no-untyped-def]
        async def heard(message: bytes) -> None:
            scopes[name] = current_row_scope()

        return heard

    try:
        with tenant_scope(tenant):  # the first subscriber acts for a tenant
            await pubsub.subscribe("event:1", handler("tenant"))
        with row_scope(NO_ROWS):  # the next for nobody
            await pubsub.subscribe("event:1", handler("nobody"))
        await asyncio.sleep(0.05)
        await pubsub.publish("event:1", b"hello")
        await _eventually(lambda: len(scopes) == 2)
        assert scopes == {"tenant": RowScope(tenant_id=tenant), "nobody": NO_ROWS}
    finally:
        await pubsub.close()
        await cache.close()


async def test_rate_limiter_counts_per_identifier(backends):
    _, _, prefix = backends
    limiter = RateLimiter(services.REDIS_URL if prefix else None, prefix or "")
    assert [await limiter.hit("2/minute", "ip", "a") for _ in range(3)] == [True, True, False]
    assert await limiter.hit("2/minute", "ip", "b") is True
    with pytest.raises(TooManyRequests) as info:
        await limiter.check("2/minute", "ip", "a")
    assert info.value.headers["Retry-After"]


async def test_limits_checked_together_count_as_checks_in_turn(backends):
    """`check_all` (one round trip on Redis) counts each limit as successive `check`s would, in
    the same windows: a full limit refuses, the limits before it keep the hit, the ones after
    it are not counted."""
    _, _, prefix = backends
    limiter = RateLimiter(services.REDIS_URL if prefix else None, prefix or "")
    viewer, ip = ("5/minute", ("v", "one")), ("3/minute", ("ip", "a"))
    for _ in range(3):
        await limiter.check_all(viewer, ip)
    with pytest.raises(TooManyRequests) as info:  # the IP's 4th
        await limiter.check_all(viewer, ip)
    assert int(info.value.headers["Retry-After"]) >= 1
    assert await limiter.hit("5/minute", "v", "one") is True  # the viewer's 5th: 4 counted
    assert await limiter.hit("5/minute", "v", "one") is False
    with pytest.raises(TooManyRequests):  # the viewer is full: the IP is not counted
        await limiter.check_all(viewer, ("3/minute", ("ip", "b")))
    assert [await limiter.hit("3/minute", "ip", "b") for _ in range(4)] == [True] * 3 + [False]
    await limiter.close()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # Redis: the lists live there
async def test_limits_checked_together_keep_only_the_hits_of_their_window(backends):
    """On Redis, a limit's list holds the hits of its current window, not the last `limit`
    hits ever: hit without pause (its expiry renewed each time), a high limit's list grew by
    every hit (the soak benchmark's Redis growth). Decisions are unchanged."""
    _, _, prefix = backends
    now = [1_000_000.0]
    limiter = RateLimiter(services.REDIS_URL, prefix, clock=lambda: now[0])
    high, low = ("1000/minute", ("ip", "shared")), ("3/minute", ("v", "one"))
    redis = Redis.from_url(services.REDIS_URL)
    key = limiter.storage.bridge.prefixed_key(parse("1000/minute").key_for("ip", "shared"))
    try:
        for second in range(0, 300, 2):  # 150 hits over 5 minutes, one every 2 s
            now[0] = 1_000_000.0 + second
            await limiter.check_all((high[0], high[1]))
        assert await redis.llen(key) == 31  # the last minute's hits (its edge too), not all 150
        for _ in range(3):
            await limiter.check_all(high, low)
        with pytest.raises(TooManyRequests):  # the low limit still refuses its 4th
            await limiter.check_all(high, low)
        now[0] += 61  # a minute later both windows are empty again
        await limiter.check_all(high, low)
        assert await redis.llen(key) == 1
    finally:
        await redis.aclose()
        await limiter.close()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # the coalescing is Redis's
async def test_concurrent_checks_share_one_round_trip_and_decide_as_in_turn(backends):
    """Checks made while another is on its way to Redis go together in one script call, in the
    order they came, and each is decided as if it had been sent alone: of 8 requests against a
    limit of 5, five pass and three are refused, whichever way they were grouped."""
    _, _, prefix = backends
    limiter = RateLimiter(services.REDIS_URL, prefix)
    coalescer = limiter._coalescer
    assert coalescer is not None
    calls: list[int] = []
    script = coalescer.script

    async def counted(*, keys, args):  # the real script, its calls counted
        calls.append(len(keys))
        return await script(keys=keys, args=args)

    coalescer.script = counted
    viewer, ip = ("5/minute", ("v", "one")), ("100/minute", ("ip", "a"))
    try:
        outcomes = await asyncio.gather(
            *(limiter.check_all(viewer, ip) for _ in range(8)), return_exceptions=True
        )
        assert [o is None for o in outcomes] == [True] * 5 + [False] * 3
        assert all(isinstance(o, TooManyRequests) for o in outcomes[5:])
        assert calls == [16]  # 8 requests x 2 limits, one call
        # the refused ones did not count against the address; the accepted ones did
        assert [await limiter.hit("100/minute", "ip", "a") for _ in range(2)] == [True, True]
        key = limiter.storage.bridge.prefixed_key(parse("100/minute").key_for("ip", "a"))
        redis = Redis.from_url(services.REDIS_URL)
        try:
            assert await redis.llen(key) == 5 + 2
        finally:
            await redis.aclose()
        await limiter.check_all(("5/minute", ("v", "two")))  # alone: a call of its own
        assert calls == [16, 1]
    finally:
        await limiter.close()


async def test_concurrent_checks_on_a_redis_gone_each_raise_the_cache_error():
    """Redis unreachable: every check of a shared call raises the client's error (a 503
    `cache_unavailable` for each request), and the next call is tried afresh."""
    from bigfootlive.http_errors import unavailable

    limiter = RateLimiter(f"redis://127.0.0.1:{services.free_port()}/0", "t:")
    try:
        for _ in range(2):
            outcomes = await asyncio.gather(
                *(limiter.check_all(("5/minute", ("v", str(n)))) for n in range(3)),
                return_exceptions=True,
            )
            assert all(isinstance(o, Exception) for o in outcomes)
            assert {unavailable(o) for o in outcomes} == {
                ("cache_unavailable", "The cache is unavailable; retry shortly")
            }
    finally:
        await limiter.close()


async def _eventually(predicate, within: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def test_hashes_set_read_delete_increment_and_expire(backends):
    cache, _, _ = backends
    await cache.hset("h", "a", b"1", ttl=0.2)
    await cache.hset("h", "b", b"2", ttl=0.2)
    assert await cache.hgetall("h") == {"a": b"1", "b": b"2"}
    await cache.hdel("h", "a")
    assert await cache.hgetall("h") == {"b": b"2"}
    assert await cache.hincrby("n", "heart", 2, ttl=10) == 2
    assert await cache.hincrby("n", "heart", 3) == 5
    await asyncio.sleep(0.3)
    assert await cache.hgetall("h") == {}
    assert await cache.hgetall("missing") == {}


async def test_cardinality_counts_distinct_items(backends):
    cache, _, _ = backends
    await cache.pfadd("u", "alice", "bob", ttl=10)
    await cache.pfadd("u", "alice", "carol")
    assert await cache.pfcount("u") == 3
    assert await cache.pfcount("nobody") == 0


async def test_mget_set_many_and_a_prefetched_view(backends):
    cache, _, _ = backends
    await cache.set_many({"a": b"1", "b": b"2"}, ttl=0.2)
    assert await cache.mget("a", "missing", "b") == [b"1", None, b"2"]
    view = await PrefetchedCache.load(cache, ["a", "missing"])
    await cache.set("a", b"changed")  # the view answers with what its one round trip read
    assert await view.get("a") == b"1"
    assert await view.get("b") == b"2"  # not prefetched: read through
    await view.set("missing", b"now")  # writes go through and are seen by the view
    assert await view.get("missing") == b"now"
    assert await cache.get("missing") == b"now"
    await asyncio.sleep(0.3)
    assert await cache.mget("b") == [None]


async def test_add_many_count_counts_each_member_once(backends):
    cache, _, _ = backends
    assert await cache.add_many_count(["m:1", "m:2"], "n", ttl=10, counter_ttl=0.3) == 2
    assert await cache.add_many_count(["m:2", "m:3"], "n", ttl=10, counter_ttl=10) == 3
    assert await cache.add_many_count([], "n", ttl=10, counter_ttl=10) == 3
    await asyncio.sleep(0.4)  # the counter keeps the TTL it was created with
    assert await cache.get("n") is None
    assert await cache.add_many_count(["m:1", "m:4"], "n", ttl=10, counter_ttl=10) == 1


async def test_add_many_sets_only_what_is_absent(backends):
    cache, _, _ = backends
    await cache.set("kept", b"newer", ttl=10)
    await cache.add_many({"kept": b"older", "filled": b"older"}, ttl=10)
    assert await cache.mget("kept", "filled") == [b"newer", b"older"]
    view = await PrefetchedCache.load(cache, ["filled", "other"])
    await view.add_many({"other": b"1"}, ttl=10)  # the view reads it through, not its miss
    assert await view.get("other") == b"1"
