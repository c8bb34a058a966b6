"""The cache and pub/sub on a Redis Cluster (`REDIS_CLUSTER=true`, or a `redis+cluster://`
URL): `redis.asyncio.cluster.RedisCluster` routes each key to the master owning its slot.

- Multi-key reads (`mget`) are split per slot (`MGET` across slots is refused by the cluster);
  multi-key deletes are split by the client. The one multi-key script (`add_many_count`) needs
  its keys in one slot: callers put a hash tag in them (`an:{<event id>}:…`), and a call whose
  keys do not share a slot fails loudly here instead of with a CROSSSLOT from the server.
- Pub/sub is sharded (Redis 7 SSUBSCRIBE/SPUBLISH): a channel lives on the master owning its
  slot, so messages travel only to that master instead of being broadcast over the cluster bus.
  One subscriber connection per master, opened when the first of its channels is subscribed.
  Servers older than 7 get classic PUBLISH/SUBSCRIBE (the cluster broadcasts them).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.crc import key_slot
from redis.exceptions import SlotNotCoveredError

from bigfootlive.kit.backends.base import MessageHandler, Unsubscribe
from bigfootlive.kit.backends.redis import RedisCache, RedisPubSub

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def cluster_nodes(url: str) -> tuple[list[tuple[str, int]], dict[str, object]]:
    """The seed nodes and connection options of `redis[s][+cluster]://[user:pass@]h:p[,h:p]`.
    Any one reachable seed is enough: the client discovers the other masters from it."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")
    options: dict[str, object] = {}
    if netloc[1]:
        user, _, password = netloc[0].partition(":")
        if user:
            options["username"] = unquote(user)
        if password:
            options["password"] = unquote(password)
    if parts.scheme.startswith("rediss"):
        options["ssl"] = True
    seeds: list[tuple[str, int]] = []
    for item in netloc[2].split(","):
        host, _, port = item.strip().rpartition(":")
        if not host:
            host, port = port, "6379"
        seeds.append((host.strip("[]"), int(port or 6379)))
    return seeds, options


def open_cluster_client(url: str) -> RedisCluster:
    """The client. Few, short retries: with a master down a request fails in well under a
    second (a 503 the client retries) instead of the library's default of several seconds of
    back-off per command; a failover's MOVED redirections are followed apart from these."""
    seeds, options = cluster_nodes(url)
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in seeds],
        health_check_interval=30,
        socket_connect_timeout=1,
        retry=Retry(ExponentialBackoff(cap=0.1, base=0.02), retries=1),
        **options,  # type: ignore[arg-type]
    )


def limits_storage_uri(url: str) -> str:
    """The `limits` library's URI for the same cluster (`async+redis+cluster://h:p,h:p`)."""
    parts = urlsplit(url)
    return "async+redis+cluster://" + parts.netloc


class ClusterCache(RedisCache):
    def __init__(self, client: RedisCluster, prefix: str) -> None:
        super().__init__(client, prefix)
        self.cluster = client

    async def mget(self, *keys: str) -> list[bytes | None]:
        if not keys:
            return []
        values = await self.cluster.mget_nonatomic([self.key(k) for k in keys])
        return [v if v is None or isinstance(v, bytes) else str(v).encode() for v in values]

    async def add_many_count(
        self, keys: Sequence[str], counter: str, *, ttl: float, counter_ttl: float
    ) -> int:
        slots = {key_slot(self.key(k).encode()) for k in (counter, *keys)}
        if len(slots) > 1:
            raise ValueError(f"add_many_count keys span {len(slots)} slots: use a hash tag")
        return await super().add_many_count(keys, counter, ttl=ttl, counter_ttl=counter_ttl)

    async def ping(self) -> None:
        """Every master answers (a master down leaves its slots, and so the cache, unusable)."""
        await self.cluster.ping(target_nodes=RedisCluster.PRIMARIES)


class ClusterPubSub:
    """Sharded pub/sub: SPUBLISH through the cluster client, SSUBSCRIBE on a connection to the
    master owning the channel's slot (one `RedisPubSub` per master)."""

    def __init__(self, client: RedisCluster, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._sharded: bool | None = None
        self._per_node: dict[str, RedisPubSub] = {}
        self._classic: RedisPubSub | None = None
        self._lock = asyncio.Lock()

    async def _is_sharded(self) -> bool:
        if self._sharded is None:
            info = await self.client.info("server", target_nodes=RedisCluster.RANDOM)
            version = str(info.get("redis_version", "0"))
            self._sharded = int(version.split(".")[0]) >= 7
        return self._sharded

    async def publish(self, channel: str, message: bytes) -> None:
        if await self._is_sharded():
            await self.client.spublish(self.prefix + channel, message)
        else:
            await self.client.publish(self.prefix + channel, message)

    async def _subscriber(self, channel: str) -> RedisPubSub:
        async with self._lock:
            await self.client.initialize()
            if not await self._is_sharded():
                if self._classic is None:
                    node = self.client.get_random_node()
                    self._classic = RedisPubSub(self._node_client(node), self.prefix)
                return self._classic
            owner = self.client.get_node_from_key(self.prefix + channel)
            if owner is None:
                raise SlotNotCoveredError(f"no master serves the slot of {channel!r}")
            node = owner
            subscriber = self._per_node.get(node.name)
            if subscriber is None:
                subscriber = RedisPubSub(self._node_client(node), self.prefix, sharded=True)
                self._per_node[node.name] = subscriber
            return subscriber

    def _node_client(self, node: ClusterNode) -> Redis:
        kwargs = node.connection_kwargs
        return Redis(
            host=node.host,
            port=int(node.port),
            username=kwargs.get("username"),
            password=kwargs.get("password"),
            health_check_interval=30,
        )

    async def subscribe(self, channel: str, handler: MessageHandler) -> Unsubscribe:
        subscriber = await self._subscriber(channel)
        return await subscriber.subscribe(channel, handler)

    async def close(self) -> None:
        subscribers = [*self._per_node.values(), *([self._classic] if self._classic else [])]
        for subscriber in subscribers:
            with contextlib.suppress(Exception):
                await subscriber.close()
            with contextlib.suppress(Exception):
                await subscriber.client.aclose()
        self._per_node.clear()
        self._classic = None


def open_cluster_backends(url: str, prefix: str) -> tuple[ClusterCache, ClusterPubSub]:
    client = open_cluster_client(url)
    return ClusterCache(client, prefix), ClusterPubSub(client, prefix)
