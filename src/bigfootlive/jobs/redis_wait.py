"""Dramatiq's Redis broker with consumers that wait on Redis when there is nothing to fetch.

Dramatiq's Redis consumer polls: with nothing in its queue it runs its fetch script again after
a backoff of at most the worker's timeout (100 ms here, `JobQueue.start_worker`), so an idle
worker's six consumers (three queues and their delay queues) ran ~80 scripts a second: about
1.5 % of a core in the process, and Redis's own share.

A queue is a Redis list of message ids (`<namespace>:<queue>`; the fetch script pops ids from it
into the worker's acknowledgement set). Here a consumer whose fetch found nothing blocks in
`BLMOVE list list LEFT LEFT timeout` on its own connection: moving the list's head onto its own
head changes nothing, in one atomic step, and returns as soon as the list holds an id, whoever
pushed it (an enqueue, a due delayed message, a requeue, the broker's maintenance). The fetch
script then takes the id as before: nothing is taken outside it, so no job can be lost.

How long a consumer waits (`_Waiting.wait`): at most `IDLE_WAIT_SECONDS`, and a third of the
broker's heartbeat timeout (each fetch refreshes this process's heartbeat; a process silent for
the whole timeout is taken for dead and its unacknowledged jobs are given to others). A delay
queue's consumer holds the delayed messages it fetched until they are due, so it waits no
longer than until the first of them is due.

Nothing is lost when a connection breaks (`_Waiting.recover`). A fetch moves ids from the queue
into this process's acknowledgement set (`<namespace>:__acks__.<broker id>.<queue>`) before its
reply is sent: when Redis dies after running it (its append-only file has the move) but before
the reply, the consumer sees a connection error and the ids stay in a set that only this
process's death (its heartbeat running out) would give back. And Dramatiq's consumer thread,
on a connection error, drops the delayed messages it holds without requeueing them. A waiting
consumer is always inside a command, so every broker restart breaks it: with held delayed jobs
(retries) that lost them every time (tests/jobs/test_redis_lost_reply.py). So each new consumer
(at a worker's start and after every error) first requeues the ids of its set the worker does
not hold: for a queue, what it handed to the worker and was not yet acknowledged, rejected or
requeued (`WaitingRedisBroker.hold`); for a delay queue, what its thread's delay queue holds.
A job may then run twice (at least once; jobs are idempotent), never not at all.

Stopping (`stop_waiting`): consumers no longer block, and each blocked one is released with
`CLIENT UNBLOCK` (it returns as on a timeout), so a worker stops as promptly as a polling one.
Where `BLMOVE` or `CLIENT` is refused (Redis < 6.2, an ACL), consumers poll as Dramatiq's do.

On a Redis Cluster (`queue._cluster_broker`) every key of the broker is in one hash slot (its
namespace is hash-tagged), so `BLMOVE` on a queue's list is a single-slot command: a consumer
waits on a connection of its own to the master owning that slot (`WaitingRedisBroker.server`),
and is released through that master's connections. A redirection or a cluster down (`MOVED`,
`ASK`, `TRYAGAIN`, `CLUSTERDOWN`: a failover, a resharding) drops that connection, and the
consumer fetches again through the cluster client, which follows the slot. The cluster client
must not retry a command after a connection error: a fetch retried after its reply was lost
would hide the loss from the consumer, which requeues only after an error (`_cluster_broker`
gives it no retries; Dramatiq's plain client has none either). A wait also ends before the
connection's socket timeout (5 s on a cluster client's connections by default), which would
otherwise take a long wait for a dead server and reconnect.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

import redis
import structlog
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import compute_backoff, current_millis, dq_name
from dramatiq.errors import ConnectionClosed
from dramatiq.message import Message
from redis.cluster import RedisCluster
from redis.exceptions import AskError, ClusterDownError, SlotNotCoveredError, TryAgainError

log = structlog.get_logger(__name__)

# The longest an idle consumer blocks before it fetches again.
IDLE_WAIT_SECONDS = 5.0
# Below this, a consumer does not block (it is about to fetch, or a delayed message is due).
_SHORTEST_WAIT = 0.002
# A wait ends by this share of its connection's socket timeout, if it has one.
_SOCKET_TIMEOUT_SHARE = 0.9
# Cluster answers that send a waiting consumer to fetch again through the cluster client (its
# slot moved: `MOVED` is an `AskError`; or the cluster is down), not to polling.
_CLUSTER_MOVES = (AskError, ClusterDownError, TryAgainError, SlotNotCoveredError)


class WaitingRedisBroker(RedisBroker):
    """`RedisBroker` whose idle consumers wait on Redis (module docstring)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)  # type: ignore[no-untyped-call]
        self.stopping = threading.Event()
        self.polls = False  # BLMOVE or CLIENT refused: consumers poll as Dramatiq's do
        # consumer -> (a client of its server, its Redis client id there), while it waits
        self._blocked: dict[int, tuple[redis.Redis, int]] = {}
        self._lock = threading.Lock()
        # queue -> Redis ids of the messages handed to the worker, not yet acknowledged,
        # rejected or requeued (a delay queue's are its consumer thread's delay queue)
        self._held: dict[str, set[str]] = {}

    @property
    def consumer_class(self) -> type[_RedisConsumer]:
        return _Waiting

    @property
    def waiting(self) -> int:
        """Consumers blocked on Redis now."""
        with self._lock:
            return len(self._blocked)

    def start_waiting(self) -> None:
        """A worker starts: its consumers may block again, and it holds nothing yet (what a
        stopped worker left in the acknowledgement sets is requeued by the new consumers)."""
        self.stopping.clear()
        with self._lock:
            self._held.clear()

    def hold(self, queue_name: str, redis_ids: Iterable[str], held: bool) -> None:
        """Note messages handed to the worker (`held`) or acknowledged, rejected, requeued."""
        with self._lock:
            ids = self._held.setdefault(queue_name, set())
            if held:
                ids.update(redis_ids)
            else:
                ids.difference_update(redis_ids)

    def held(self, queue_name: str) -> set[str]:
        with self._lock:
            return set(self._held.get(queue_name, ()))

    def server(self, key: str) -> redis.Redis:
        """A client of the server holding `key`, whose pool a waiting consumer takes its
        connection from: the broker's own on plain Redis; on a cluster, that of the master
        owning the key's slot."""
        client = self.client
        if isinstance(client, RedisCluster):
            node = client.get_node_from_key(key)  # type: ignore[no-untyped-call]
            return client.get_redis_connection(node)
        return client

    def stop_waiting(self) -> None:
        """No consumer blocks from now on; those blocked return at once. A consumer that was
        about to block may still do so: call again until the worker has stopped."""
        self.stopping.set()
        with self._lock:
            blocked = list(self._blocked.values())
        for server, client_id in blocked:
            try:
                server.client_unblock(client_id)
            except redis.ResponseError:  # CLIENT refused: consumers poll from now on
                if not self.polls:
                    log.warning("jobs_redis_unblock_refused", exc_info=True)
                self.polls = True
            except redis.RedisError:
                log.warning("jobs_redis_unblock_failed", exc_info=True)

    def _wait_timeout(self) -> float:
        heartbeat = float(self.heartbeat_timeout) / 1000
        return min(IDLE_WAIT_SECONDS, heartbeat / 3)


class _Waiting(_RedisConsumer):
    """Dramatiq's Redis consumer, which waits on its queue's list instead of sleeping and
    fetching again while it is empty."""

    broker: WaitingRedisBroker

    def __init__(self, broker: WaitingRedisBroker, queue_name: str, prefetch: int, timeout: int):
        super().__init__(broker, queue_name, prefetch, timeout)  # type: ignore[no-untyped-call]
        self.key = f"{broker.namespace}:{queue_name}"
        self.client: redis.Redis | None = None  # its own connection, for blocking commands
        self.server: redis.Redis | None = None  # the client whose pool that connection is from
        # The ConsumerThread this runs on: a delay queue's holds the messages not yet due.
        self.thread = threading.current_thread()
        self.delays = queue_name == dq_name(queue_name)
        self.recovered = False

    def __next__(self) -> MessageProxy | None:
        # Dramatiq's `_RedisConsumer.__next__`, with `wait` where it slept and `recover` first.
        try:
            if not self.recovered:
                self.recover()
                self.recovered = True
            while True:
                if self.message_cache:
                    data = self.message_cache.pop(0)
                    if data is None:
                        continue
                    self.misses = 0
                    message = Message.decode(data)
                    self.queued_message_ids.add(message.message_id)
                    if not self.delays:
                        self.broker.hold(self.queue_name, [_redis_id(message)], True)
                    return MessageProxy(message)
                if self.outstanding_message_count >= self.prefetch:
                    # Busy with all it may take: look again shortly, as Dramatiq does.
                    self._sleep()
                    return None
                self.message_cache = self.broker.do_fetch(
                    self.queue_name, self.prefetch - self.outstanding_message_count
                )
                if not self.message_cache:
                    self.wait()
                    return None
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]

    def recover(self) -> None:
        """Requeue the ids of this process's acknowledgement set for the queue that the worker
        does not hold (module docstring): a fetch whose reply was lost, delayed messages the
        consumer thread dropped on a connection error, what a stopped worker left."""
        broker = self.broker
        acks = f"{broker.namespace}:__acks__.{broker.broker_id}.{self.queue_name}"
        # What the worker holds is read first: an id acknowledged after this read is no longer
        # in the set read next (no requeue), and nothing is handed to the worker meanwhile
        # (this consumer is the only one fetching its queue, and it is here).
        held = self._held_ids()
        members: Any = broker.client.smembers(acks)  # bytes (the pool does not decode)
        lost = sorted({m.decode() for m in members} - held)
        if lost:
            log.warning("jobs_redis_requeued_unheld", queue=self.queue_name, messages=len(lost))
            broker.do_requeue(self.queue_name, *lost)

    def _held_ids(self) -> set[str]:
        if not self.delays:
            return self.broker.held(self.queue_name)
        held = getattr(self.thread, "delay_queue", None)
        return {_redis_id(item.message) for item in list(getattr(held, "queue", ()))}

    def ack(self, message: MessageProxy) -> None:
        super().ack(message)  # type: ignore[no-untyped-call]
        self.broker.hold(self.queue_name, [_redis_id(message)], False)

    def nack(self, message: MessageProxy) -> None:
        super().nack(message)  # type: ignore[no-untyped-call]
        self.broker.hold(self.queue_name, [_redis_id(message)], False)

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        # Dramatiq's lets Redis's error out, which its consumer thread does not catch when it
        # closes after an error: the thread died and its queue was never consumed again.
        held = list(messages)
        try:
            super().requeue(held)  # type: ignore[no-untyped-call]
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]
        self.broker.hold(self.queue_name, [_redis_id(m) for m in held], False)

    def _sleep(self) -> None:
        self.misses, backoff_ms = compute_backoff(self.misses, max_backoff=self.timeout)
        time.sleep(backoff_ms / 1000)

    def _until_due(self) -> float | None:
        """Seconds until the first delayed message this consumer's thread holds is due."""
        held = getattr(getattr(self.thread, "delay_queue", None), "queue", None)
        if not held:
            return None
        return float(held[0].priority - current_millis()) / 1000

    def wait(self) -> None:
        """Block until the queue's list holds an id, at most the broker's wait, and no later
        than the first held delayed message is due."""
        broker = self.broker
        if broker.polls or broker.stopping.is_set():
            self._sleep()
            return
        try:
            client, server = self._connect()
            timeout = self._timeout(server)
            if timeout < _SHORTEST_WAIT:
                return
            client_id = int(client.client_id())
            with broker._lock:
                broker._blocked[id(self)] = (server, client_id)
            try:
                if broker.stopping.is_set():  # set since the check above
                    return
                # Redis takes a timeout in seconds with decimals (redis-py's type says int).
                client.blmove(self.key, self.key, timeout, "LEFT", "LEFT")  # type: ignore[arg-type]
            finally:
                with broker._lock:
                    broker._blocked.pop(id(self), None)
        except _CLUSTER_MOVES:
            # The slot left that master, or the cluster is down: the next fetch goes through
            # the cluster client, which finds the slot's master again; so does the next wait.
            log.info("jobs_redis_wait_moved", queue=self.queue_name, exc_info=True)
            self._disconnect()
            self._sleep()
        except redis.ResponseError:
            log.warning("jobs_redis_wait_refused", queue=self.queue_name, exc_info=True)
            broker.polls = True
        except redis.TimeoutError:
            pass  # a socket timeout shorter than the wait: fetch again

    def _connect(self) -> tuple[redis.Redis, redis.Redis]:
        if self.client is None or self.server is None:
            self.server = self.broker.server(self.key)
            self.client = redis.Redis(
                connection_pool=self.server.connection_pool, single_connection_client=True
            )
        return self.client, self.server

    def _timeout(self, server: redis.Redis) -> float:
        timeout = self.broker._wait_timeout()
        due = self._until_due()
        if due is not None:
            timeout = min(timeout, due)
        socket_timeout = server.connection_pool.connection_kwargs.get("socket_timeout")
        if socket_timeout:
            timeout = min(timeout, float(socket_timeout) * _SOCKET_TIMEOUT_SHARE)
        return timeout

    def _disconnect(self) -> None:
        client, self.client, self.server = self.client, None, None
        if client is not None:
            client.close()

    def close(self) -> None:
        self._disconnect()
        super().close()


def _redis_id(message: Message[Any] | MessageProxy) -> str:
    return str(message.options["redis_message_id"])
