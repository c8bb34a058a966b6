"""`RedisWire` (the cache's coalesced round trips with less of redis-py around them) answers as
redis-py answers, and a connection that fails is left for redis-py's own path."""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bigfootlive.kit.backends.redis import RedisCache, open_redis_backends
from bigfootlive.kit.backends.redis_wire import RedisWire, pack
from tests.fixtures import services


@pytest.fixture
async def cache() -> AsyncIterator[RedisCache]:
    services.require(services.port_open("127.0.0.1", 6379), "Redis")
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    cache, pubsub = open_redis_backends(services.REDIS_URL, prefix)
    assert isinstance(cache, RedisCache)
    assert cache.wire is not None
    yield cache
    await pubsub.close()
    await cache.close()
    await services.redis_delete_prefix(services.REDIS_URL, prefix)


def test_a_command_is_packed_as_redis_py_packs_it():
    client = Redis()
    conn = client.connection_pool.make_connection()
    args = ("EVALSHA", "abc", 2, "k:é", b"\x00\r\n", 0, -7, "", 0.25)
    assert pack(args) == b"".join(conn.pack_command(*args))
    with pytest.raises(TypeError):
        pack(("SET", "k", True))


async def test_replies_and_errors_are_redis_pys(cache):
    wire, client = cache.wire, cache.client
    assert wire is not None
    key = cache.key("w")
    assert await wire.call("SET", key, b"x", "PX", 60_000) == b"OK"
    mget = ("MGET", key, cache.key("missing"))
    assert await wire.call(*mget) == await client.execute_command(*mget) == [b"x", None]
    with pytest.raises(ResponseError) as ours:
        await wire.call("INCR", key)
    with pytest.raises(ResponseError) as theirs:
        await client.incr(key)
    assert str(ours.value) == str(theirs.value)
    assert wire.idle == 1  # an error reply leaves the connection in use


async def test_a_lost_connection_is_dropped_and_its_call_answered_through_redis_py(cache):
    wire = cache.wire
    assert wire is not None
    await cache.set("lost", b"still here")
    ours = await wire.call("CLIENT", "ID")  # the id of the wire's connection
    assert await cache.client.client_kill_filter(_id=ours) == 1
    assert await cache.mget("lost") == [b"still here"]
    assert wire.idle == 0  # the dead connection was left; redis-py's pool answered
    assert await cache.mget("lost") == [b"still here"]
    assert await wire.call("CLIENT", "ID") != ours  # a connection of its own again
    assert wire.idle == 1


async def test_a_script_the_server_does_not_know_is_loaded_and_run(cache):
    script = cache.client.register_script(f"return ARGV[1] .. '{uuid.uuid4().hex}'")
    first = await cache._run_script(script, [], ["x"])
    assert first == await cache._run_script(script, [], ["x"])
    assert isinstance(first, bytes)
    assert first.startswith(b"x")


async def test_a_cancelled_call_takes_its_connection_with_it(cache):
    wire = cache.wire
    assert wire is not None
    await wire.call("PING")
    blocked = asyncio.ensure_future(wire.call("BLPOP", cache.key("never"), 0))
    await asyncio.sleep(0)  # the call starts: it takes the idle connection at once
    assert wire.idle == 0
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    assert wire.idle == 0
    await cache.set("after", b"1")
    assert await cache.mget("after") == [b"1"]  # a new connection, not the blocked one's reply
    assert wire.idle == 1


async def test_close_closes_the_idle_connections_and_one_in_use_after_its_call():
    services.require(services.port_open("127.0.0.1", 6379), "Redis")
    client = Redis.from_url(services.REDIS_URL)
    wire = RedisWire(client)
    try:
        await wire.call("PING")
        slow = asyncio.ensure_future(wire.call("BLPOP", f"test:{uuid.uuid4().hex}", 0.2))
        await asyncio.sleep(0)  # the call starts: it takes the idle connection at once
        assert wire.idle == 0
        await wire.close()
        assert await slow is None
        assert wire.idle == 0
    finally:
        await client.aclose()


async def test_a_call_awaiting_its_reply_survives_the_collector(cache):
    """A call made by a task nothing references (the coalesced round trips' sending task):
    while it waits for its reply, its connection is referenced by the wire, so the collector
    cannot free the call (it was: "Task was destroyed but it is pending!", and every caller
    waiting on that round trip was cancelled)."""
    wire, client = cache.wire, cache.client
    assert wire is not None
    key = cache.key("blocked")
    answered: asyncio.Future[object] = asyncio.get_running_loop().create_future()

    async def call() -> None:
        answered.set_result(await wire.call("BLPOP", key, 5))

    asyncio.create_task(call())  # noqa: RUF006 - referenced by nothing, as the sending task
    while b"cmd=blpop" not in await client.execute_command("CLIENT", "LIST", "TYPE", "normal"):  # noqa: ASYNC110 - Redis has no event to wait on
        await asyncio.sleep(0.01)  # Redis holds it: the task awaits the reply
    gc.collect()
    await client.rpush(key, b"x")
    assert await asyncio.wait_for(answered, 5) == [key.encode(), b"x"]
