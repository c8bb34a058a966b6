"""The app on a Redis Cluster of three masters (REDIS_URL=redis+cluster://…): the cache and the
channels spread over the masters, multi-key work shares a slot through hash tags, pub/sub is
sharded (SSUBSCRIBE on the master owning the channel), jobs and rate limits run on it, and a
master that goes down is a clear 503 with Retry-After and a /ready naming the cache."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from redis.asyncio import Redis

from bigfootlive.analytics.ingest import BeaconBuffer, active_viewers, minute_of, uniques_key
from bigfootlive.analytics.schemas import HeartbeatBeacon
from bigfootlive.authz.roles import Role
from bigfootlive.chat.rules import timeout_key
from bigfootlive.composition import AppState
from bigfootlive.db import utcnow
from bigfootlive.kit.backends.redis_cluster import ClusterCache, ClusterPubSub
from tests.fixtures.factories import Factory
from tests.fixtures.own_servers import RedisClusterServers
from tests.fixtures.polling import until
from tests.jobs import probe_tasks as probes
from tests.realtime.conftest import create_event


async def _keys_per_master(cluster: RedisClusterServers, prefix: str) -> list[int]:
    counts = []
    for node in cluster.nodes:
        client = Redis(host="127.0.0.1", port=node.port)
        try:
            counts.append(len([k async for k in client.scan_iter(match=prefix + "*")]))
        finally:
            await client.aclose()
    return counts


async def test_cache_and_sharded_channels_spread_over_the_three_masters(
    state: AppState, client: httpx.AsyncClient, redis_cluster: RedisClusterServers
) -> None:
    assert isinstance(state.cache, ClusterCache)
    assert isinstance(state.pubsub, ClusterPubSub)
    ready = (await client.get("/ready")).json()
    assert ready["checks"]["cache"] == "ok", ready

    keys = {f"spread:{n}": str(n).encode() for n in range(30)}
    await state.cache.set_many(keys, ttl=60)
    assert await state.cache.mget(*keys) == list(keys.values())  # one call, many slots
    assert all(count > 0 for count in await _keys_per_master(redis_cluster, "test:")), (
        "every master holds some of the keys"
    )
    await state.cache.delete(*keys)
    assert await state.cache.mget(*keys) == [None] * len(keys)

    got: dict[str, list[bytes]] = {}

    def handler(channel: str) -> Any:
        async def receive(message: bytes) -> None:
            got.setdefault(channel, []).append(message)

        return receive

    channels = [f"event:{uuid.uuid4()}" for _ in range(12)]
    unsubscribe = [await state.pubsub.subscribe(c, handler(c)) for c in channels]
    assert len(state.pubsub._per_node) == 3  # one sharded subscriber per master
    for channel in channels:
        await state.pubsub.publish(channel, channel.encode())
    await until(lambda: len(got) == len(channels))
    assert got == {c: [c.encode()] for c in channels}
    for stop in unsubscribe:
        await stop()


class _Sent:
    """The beacon buffer's queue, recording the roll-ups it would send."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def enqueue(self, task: object, **kwargs: Any) -> None:
        self.sent.append(kwargs)


async def test_viewer_counts_use_hash_tagged_keys_in_one_slot(state: AppState) -> None:
    """The real-time viewer counters run one script over a counter and its members: their keys
    carry the event id as a hash tag, so the cluster runs it on one master."""
    event, tenant = uuid.uuid4(), uuid.uuid4()
    buffer = BeaconBuffer(state.cache, 60, _Sent())  # type: ignore[arg-type]
    now = utcnow()
    beat = HeartbeatBeacon(type="heartbeat", watched_ms=1000)
    for viewer in range(25):
        await buffer.add_beacons(event, tenant, f"a:viewer-{viewer}", [beat], now)
    await buffer.flush()
    await buffer.add_beacons(event, tenant, "a:viewer-1", [beat], now)  # seen again: once
    await buffer.flush()
    assert await active_viewers(state.cache, event, minute_of(now)) == 25
    assert int(await state.cache.get(uniques_key(event)) or 0) == 25


async def test_jobs_run_on_the_cluster_broker(state: AppState) -> None:
    """Without BROKER_URL the job broker is the cluster too: Dramatiq's keys all carry the
    `{prefix dramatiq}` hash tag, one slot, so its script runs on one master."""
    assert state.jobs.broker.namespace.startswith("{")  # type: ignore[attr-defined]
    run = uuid.uuid4().hex
    for label in ("a", "b", "c"):
        await state.jobs.enqueue(probes.record, run=run, label=label)
    await until(lambda: len(probes.RUNS[run]) == 3)
    assert sorted(r["label"] for r in probes.RUNS[run]) == ["a", "b", "c"]


async def test_a_master_down_is_a_503_with_retry_after_and_recovers(
    state: AppState,
    client: httpx.AsyncClient,
    factory: Factory,
    redis_cluster: RedisClusterServers,
) -> None:
    owner = await factory.user(await factory.tenant(), role=Role.STREAMER)
    event = await create_event(client, owner)
    said = await client.post(
        f"/api/events/{event['id']}/chat", json={"body": "before"}, headers=owner.headers
    )
    assert said.status_code == 201, said.text
    # The master holding a key every send of this owner reads (its timeout): which master it
    # is depends on the event's random id, and with another one down the sends may never touch
    # the missing slots (the test failed about half the time)
    assert isinstance(state.cache, ClusterCache)
    key = state.cache.key(timeout_key(uuid.UUID(event["id"]), owner.user.id))
    owner_port = state.cache.client.get_node_from_key(key).port
    node = next(n for n in redis_cluster.nodes if n.port == owner_port)
    node.stop()
    try:
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["cache"].startswith("error"), ready.json()
        assert ready.json()["checks"]["database"] == "ok"
        refused = []
        for n in range(20):  # what needs the missing master's slots is refused, clearly
            said = await client.post(
                f"/api/events/{event['id']}/chat", json={"body": f"d{n}"}, headers=owner.headers
            )
            assert said.status_code in (201, 503), said.text
            if said.status_code == 503:
                assert int(said.headers["Retry-After"]) >= 1
                assert said.json()["error"]["code"] == "cache_unavailable"
                refused.append(said)
        assert refused
    finally:
        node.start()  # same port and nodes.conf: it rejoins with its slots
    await until(redis_cluster.state_ok, within=30)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while (await client.get("/ready")).status_code != 200:  # no app restart
        assert loop.time() < deadline, "the app did not recover"
        await asyncio.sleep(0.1)
    said = await client.post(
        f"/api/events/{event['id']}/chat", json={"body": "after"}, headers=owner.headers
    )
    assert said.status_code == 201, said.text


def test_cluster_urls_and_redis_errors() -> None:
    from bigfootlive.kit.backends.redis_cluster import cluster_nodes

    seeds, options = cluster_nodes("rediss+cluster://app:s%40cret@10.0.0.1:7000,10.0.0.2:7001")
    assert seeds == [("10.0.0.1", 7000), ("10.0.0.2", 7001)]
    assert options == {"username": "app", "password": "s@cret", "ssl": True}
    assert cluster_nodes("redis://h")[0] == [("h", 6379)]
