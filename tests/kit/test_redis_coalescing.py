"""The Redis cache sends the reads (MGET) and the write-then-publish calls of concurrent callers
together, one round trip at a time, and each caller gets what a round trip of its own would
have given it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from bigfootlive.kit.backends import set_then_publish
from bigfootlive.kit.backends.redis import RedisCache, RedisPubSub, open_redis_backends
from tests.fixtures import services


@pytest.fixture
async def redis() -> AsyncIterator[tuple[RedisCache, RedisPubSub]]:
    services.require(services.port_open("127.0.0.1", 6379), "Redis")
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    cache, pubsub = open_redis_backends(services.REDIS_URL, prefix)
    assert isinstance(cache, RedisCache)
    assert isinstance(pubsub, RedisPubSub)
    yield cache, pubsub
    await pubsub.close()
    await cache.close()
    await services.redis_delete_prefix(services.REDIS_URL, prefix)


def _count_commands(cache: RedisCache, name: str) -> list[int]:
    """The `name` commands sent to Redis from now on, by their number of arguments."""
    sent: list[int] = []
    assert cache.wire is not None
    call = cache.wire.call

    async def counted(*args):
        if args[0] == name:
            sent.append(len(args) - 1)
        return await call(*args)

    cache.wire.call = counted  # type: ignore[method-assign]
    return sent


def _count_mgets(cache: RedisCache) -> list[int]:
    """The MGETs sent to Redis from now on, by their number of keys."""
    return _count_commands(cache, "MGET")


async def test_concurrent_reads_share_a_round_trip_and_each_gets_its_own_values(redis):
    cache, _ = redis
    await cache.set("a", b"1")
    await cache.set("b", b"2")
    sent = _count_mgets(cache)
    asked = [("a",), ("b", "a"), ("missing",), ("b", "missing", "a")] * 5
    answers = await asyncio.gather(*(cache.mget(*keys) for keys in asked))
    values = {"a": b"1", "b": b"2", "missing": None}
    assert answers == [[values[k] for k in keys] for keys in asked]
    # asked in one turn of the event loop: one MGET for the 20
    assert sent == [sum(len(keys) for keys in asked)]
    assert await cache.mget("b") == [b"2"]  # alone: a round trip of its own
    assert sent[1:] == [1]


async def test_reads_asked_while_one_is_under_way_go_together_in_the_next(redis):
    cache, _ = redis
    await cache.set("a", b"1")
    assert cache.wire is not None
    call = cache.wire.call
    sent: list[int] = []
    first_sent, release = asyncio.Event(), asyncio.Event()

    async def held(*args):
        sent.append(len(args) - 1)
        if len(sent) == 1:
            first_sent.set()
            await release.wait()
        return await call(*args)

    cache.wire.call = held  # type: ignore[method-assign]
    first = asyncio.ensure_future(cache.mget("a"))
    await first_sent.wait()
    rest = [asyncio.ensure_future(cache.mget("a", "missing")) for _ in range(3)]
    await asyncio.sleep(0)  # each of them asked (and waits)
    assert sent == [1]
    release.set()
    assert await first == [b"1"]
    assert await asyncio.gather(*rest) == [[b"1", None]] * 3
    assert sent == [1, 6]  # one MGET at a time: the three that came meanwhile, together


async def test_a_read_sent_together_sees_every_write_completed_before_it_was_asked(redis):
    """A revocation written (and returned) before a callback asks is what the callback reads,
    whichever round trip its read goes in."""
    cache, _ = redis
    await cache.set("apikey", b"valid")
    first = asyncio.ensure_future(cache.mget("other"))  # under way: the next reads wait for it
    await asyncio.sleep(0)
    await cache.set("apikey", b"revoked")
    after = await asyncio.gather(*(cache.mget("apikey") for _ in range(3)))
    await first
    assert after == [[b"revoked"]] * 3


async def test_concurrent_writes_then_news_share_a_round_trip_in_order(redis):
    cache, pubsub = redis
    heard: list[bytes] = []
    done = asyncio.Event()

    async def on_message(message: bytes) -> None:
        heard.append(message)
        if len(heard) == 8:
            done.set()

    unsubscribe = await pubsub.subscribe("news", on_message)
    calls: list[int] = []
    run = cache._run_script

    async def counted(script, keys, args):
        calls.append(int(args[0]))  # the groups of this call
        return await run(script, keys, args)

    cache._run_script = counted  # type: ignore[method-assign]
    try:
        await asyncio.gather(
            *(
                set_then_publish(
                    cache,
                    pubsub,
                    [f"e{n}:x", f"e{n}:y"],
                    f"v{n}".encode(),
                    ttl=60,
                    messages=[("news", f"{n}a".encode()), ("news", f"{n}b".encode())],
                )
                for n in range(4)
            )
        )
        assert calls == [4]  # asked in one turn of the event loop: one script call
        for n in range(4):
            assert await cache.mget(f"e{n}:x", f"e{n}:y") == [f"v{n}".encode()] * 2
        await asyncio.wait_for(done.wait(), 5)
        assert heard == [f"{n}{part}".encode() for n in range(4) for part in "ab"]
    finally:
        await unsubscribe()


async def test_concurrent_reads_on_a_redis_gone_each_raise_and_the_next_tries_afresh():
    from bigfootlive.http_errors import unavailable

    cache, pubsub = open_redis_backends(f"redis://127.0.0.1:{services.free_port()}/0", "t:")
    assert isinstance(cache, RedisCache)
    try:
        for _ in range(2):
            outcomes = await asyncio.gather(
                *(cache.mget(f"k{n}") for n in range(4)), return_exceptions=True
            )
            assert all(isinstance(o, Exception) for o in outcomes)
            assert {unavailable(o) for o in outcomes} == {  # a 503 for each request
                ("cache_unavailable", "The cache is unavailable; retry shortly")
            }
    finally:
        await pubsub.close()
        await cache.close()
