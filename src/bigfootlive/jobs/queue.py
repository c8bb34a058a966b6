"""`JobQueue`: a Dramatiq broker chosen by settings, our tasks declared on it as actors, and the
glue that runs each async task on an event loop that owns the process's resources.

Brokers: `BROKER_URL=amqp://…` (RabbitMQ) or `redis://…`; else the Redis (or Redis Cluster) at
`REDIS_URL`; else
Dramatiq's in-process StubBroker with a worker inside the API process (the embedded default).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import time
import traceback
import uuid
from collections.abc import Coroutine
from typing import Any, Protocol

import dramatiq
import structlog
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage, Middleware, Retries

from bigfootlive.authz.scoping import platform_scope
from bigfootlive.config import Settings
from bigfootlive.db import Database
from bigfootlive.jobs.dead import add_dead_job
from bigfootlive.jobs.redis_wait import WaitingRedisBroker
from bigfootlive.jobs.registry import TASKS, JobContext, Priority, Task, load_tasks
from bigfootlive.kit.backends import Cache
from bigfootlive.observability import metrics

log = structlog.get_logger(__name__)

OUTCOMES = ("enqueued", "running", "succeeded", "failed", "dead")


class QueueHost(Protocol):
    """What the queue uses of the process state it is bound to."""

    @property
    def db(self) -> Database: ...

    @property
    def cache(self) -> Cache: ...


class JobTimeout(Exception):
    """The task ran longer than its time limit; it is retried like any failure."""


class QueueNotBound(RuntimeError):
    pass


class _DeadLetters(Middleware):
    """Runs after Retries (after-hooks run in reverse order): a failed message is dead."""

    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is not None and message.failed:
            self.queue.run_sync(self.queue.record_dead(message, exception), timeout=30)


def make_broker(settings: Settings, middleware: list[Middleware]) -> dramatiq.Broker:
    url = settings.broker_url or settings.redis_url
    if url and not settings.broker_url and settings.uses_redis_cluster:
        return _cluster_broker(settings, url, middleware)
    if url and url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, middleware=middleware, confirm_delivery=True)
    if url and url.startswith(("redis://", "rediss://", "unix://")):
        # Idle consumers wait on Redis instead of polling it (jobs/redis_wait.py).
        return WaitingRedisBroker(
            url=url,
            middleware=middleware,
            namespace=settings.redis_key_prefix + "dramatiq",
            heartbeat_timeout=settings.jobs_redis_heartbeat_timeout_ms,
            maintenance_chance=settings.jobs_redis_maintenance_chance,
        )
    if url:
        raise ValueError("BROKER_URL must be amqp://, amqps://, redis://, rediss:// or unix://")
    return StubBroker(middleware=middleware)


def _cluster_broker(settings: Settings, url: str, middleware: list[Middleware]) -> dramatiq.Broker:
    """The Redis broker on a Redis Cluster: Dramatiq's script builds every key from the
    namespace, so a hash-tagged namespace (`{bfl:dramatiq}`) keeps all of them in one slot, on
    one master; the cluster client sends the script there, and idle consumers wait on that
    master (jobs/redis_wait.py). The client does not retry a command after a connection error
    (a fetch retried after its reply was lost would hide the loss from the consumer, which
    requeues what it lost after an error); it still follows MOVED and ASK redirections."""
    from redis.backoff import NoBackoff
    from redis.cluster import ClusterNode, RedisCluster
    from redis.retry import Retry

    from bigfootlive.kit.backends.redis_cluster import cluster_nodes

    seeds, options = cluster_nodes(url)
    client = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in seeds],  # type: ignore[no-untyped-call]
        retry=Retry(NoBackoff(), retries=0),
        **options,  # type: ignore[arg-type]
    )
    return WaitingRedisBroker(
        client=client,
        middleware=middleware,
        namespace="{" + settings.redis_key_prefix + "dramatiq}",
        heartbeat_timeout=settings.jobs_redis_heartbeat_timeout_ms,
        maintenance_chance=settings.jobs_redis_maintenance_chance,
    )


class JobQueue:
    def __init__(self, settings: Settings) -> None:
        load_tasks(settings.jobs_extra_task_modules)
        self.settings = settings
        self.broker = make_broker(
            settings,
            [
                CurrentMessage(),
                _DeadLetters(self),
                Retries(
                    max_retries=settings.jobs_max_retries,
                    min_backoff=settings.jobs_min_backoff_ms,
                    max_backoff=settings.jobs_max_backoff_ms,
                ),
            ],
        )
        self.actors: dict[str, dramatiq.Actor[Any, Any]] = {}
        for spec in TASKS.values():
            self.declare(spec)
        self.state: QueueHost | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.worker: dramatiq.Worker | None = None
        self.autostart = False

    @property
    def in_process(self) -> bool:
        return isinstance(self.broker, StubBroker)

    @property
    def runs_worker_in_api(self) -> bool:
        setting = self.settings.jobs_inprocess_worker
        return self.in_process if setting is None else setting

    def queue_name(self, priority: Priority) -> str:
        return f"{self.settings.jobs_queue_prefix}.{priority.value}"

    @property
    def queue_names(self) -> list[str]:
        return [self.queue_name(p) for p in Priority]

    def declare(self, spec: Task) -> None:
        """Declare one task as an actor on this broker (done for every registered task)."""
        options: dict[str, Any] = {}
        if spec.max_retries is not None:
            options["max_retries"] = spec.max_retries
        if spec.min_backoff_ms is not None:
            options["min_backoff"] = spec.min_backoff_ms
        if spec.max_backoff_ms is not None:
            options["max_backoff"] = spec.max_backoff_ms
        runner = functools.partial(self._run, spec)
        functools.update_wrapper(runner, spec.fn)
        self.actors[spec.name] = dramatiq.Actor(
            runner,
            broker=self.broker,
            actor_name=spec.name,
            queue_name=self.queue_name(spec.priority),
            priority=spec.priority.rank,
            options=options,
        )

    # ---- running tasks -------------------------------------------------------------------

    def bind(self, state: QueueHost, loop: asyncio.AbstractEventLoop) -> None:
        """Tasks run as coroutines on `loop`, with `state`'s database, cache and mailer."""
        self.state = state
        self.loop = loop

    def run_sync(self, coro: Coroutine[Any, Any, Any], *, timeout: float | None) -> Any:
        """From a worker thread: run `coro` on the bound loop and wait for its result."""
        if self.loop is None or self.loop.is_closed():
            coro.close()
            raise QueueNotBound("the job queue is not bound to a running event loop")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise JobTimeout(f"the job ran longer than {timeout:g}s") from exc

    def max_retries(self, spec: Task) -> int:
        return self.settings.jobs_max_retries if spec.max_retries is None else spec.max_retries

    def _run(self, spec: Task, **kwargs: Any) -> None:
        message = CurrentMessage.get_current_message()
        assert message is not None  # noqa: S101 - the CurrentMessage middleware is always on
        retries = int(message.options.get("retries", 0))
        started = time.time()
        queued_at = message.options.get("eta") or message.message_timestamp
        if retries == 0:
            metrics.JOB_START_LATENCY.labels(spec.name).observe(
                max(0.0, started - queued_at / 1000)
            )
        if self.state is None:
            raise QueueNotBound("the job queue is not bound to a process state")
        ctx = JobContext(
            state=self.state,
            task=spec.name,
            message_id=message.message_id,
            attempt=retries + 1,
            max_attempts=self.max_retries(spec) + 1,
        )
        limit = spec.time_limit or self.settings.jobs_time_limit_seconds
        self.run_sync(self._execute(spec, ctx, kwargs, limit), timeout=limit + 5)

    async def _execute(
        self, spec: Task, ctx: JobContext[QueueHost], kwargs: dict[str, Any], limit: float
    ) -> None:
        queue = self.queue_name(spec.priority)
        metrics.JOBS_RUNNING.labels(queue, spec.name).inc()
        await self._count(spec.name, "running")
        started = time.perf_counter()
        try:
            # A job is the platform's own code, given ids it wrote itself (an event, a delivery):
            # it may find and touch any tenant's rows, and the scope is logged with its name.
            with platform_scope(f"job {spec.name}"):
                await asyncio.wait_for(spec.fn(ctx, **kwargs), timeout=limit)
        except TimeoutError as exc:
            await self._finished(spec, queue, "failed")
            log.warning("job_timed_out", task=spec.name, message_id=ctx.message_id, limit=limit)
            raise JobTimeout(f"the job ran longer than {limit:g}s") from exc
        except BaseException:
            await self._finished(spec, queue, "failed")
            log.warning(
                "job_failed",
                task=spec.name,
                message_id=ctx.message_id,
                attempt=ctx.attempt,
                exc_info=True,
            )
            raise
        else:
            await self._finished(spec, queue, "succeeded")
        finally:
            metrics.JOB_DURATION.labels(spec.name).observe(time.perf_counter() - started)

    async def _finished(self, spec: Task, queue: str, outcome: str) -> None:
        metrics.JOBS_RUNNING.labels(queue, spec.name).dec()
        metrics.JOBS.labels(queue, spec.name, outcome).inc()
        await self._count(spec.name, "running", -1)
        await self._count(spec.name, outcome)

    async def _count(self, task_name: str, outcome: str, amount: int = 1) -> None:
        if self.state is None:
            return
        try:
            await self.state.cache.incr(f"jobs:stats:{task_name}:{outcome}", amount)
        except Exception:
            log.exception("job_stats_failed", task=task_name)

    async def record_dead(self, message: dramatiq.MessageProxy, exception: BaseException) -> None:
        assert self.state is not None  # noqa: S101
        spec = TASKS[message.actor_name]
        queue = self.queue_name(spec.priority)
        async with self.state.db.transaction() as session:
            await add_dead_job(
                session,
                message_id=message.message_id,
                queue=queue,
                task=spec.name,
                kwargs=dict(message.kwargs),
                attempts=int(message.options.get("retries", 0)),
                error=f"{type(exception).__name__}: {exception}"[:2000],
                trace="".join(traceback.format_exception(exception))[-20000:],
            )
        metrics.JOBS.labels(queue, spec.name, "dead").inc()
        await self._count(spec.name, "dead")
        log.error("job_dead", task=spec.name, message_id=message.message_id)

    # ---- enqueueing ----------------------------------------------------------------------

    async def enqueue(
        self,
        target: Task | str,
        *,
        delay_ms: int | None = None,
        message_id: str | None = None,
        **kwargs: Any,
    ) -> str:
        """Send one job; returns its message id. Prefer `enqueue_after_commit` in services."""
        name = target if isinstance(target, str) else target.name
        actor = self.actors[name]
        if self.autostart and self.worker is None:
            self.start_worker()
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=actor.queue_name,
            actor_name=name,
            args=(),
            kwargs=kwargs,
            options={},
            message_id=message_id or str(uuid.uuid4()),
        )
        if self.in_process:
            self.broker.enqueue(message, delay=delay_ms)
        else:
            # The Redis and RabbitMQ clients block: keep them off the event loop.
            await asyncio.to_thread(self.broker.enqueue, message, delay=delay_ms)
        metrics.JOBS.labels(actor.queue_name, name, "enqueued").inc()
        await self._count(name, "enqueued")
        return message.message_id

    # ---- workers -------------------------------------------------------------------------

    def start_worker(
        self,
        *,
        threads: int | None = None,
        queues: set[str] | None = None,
        prefetch: int | None = None,
    ) -> None:
        if self.loop is None:
            raise QueueNotBound("bind() the queue before starting a worker")
        self.worker = dramatiq.Worker(
            self.broker,
            worker_threads=threads or self.settings.jobs_worker_threads,
            worker_timeout=100,
            queues=queues,
        )
        if prefetch:
            self.worker.queue_prefetch = prefetch
        if isinstance(self.broker, WaitingRedisBroker):
            self.broker.start_waiting()
        self.worker.start()

    async def stop_worker(self, timeout_ms: int = 10_000) -> None:
        self.autostart = False
        worker, self.worker = self.worker, None
        if worker is not None:
            # stop() joins threads that may be waiting on this loop: never block it.
            stopped = asyncio.ensure_future(asyncio.to_thread(worker.stop, timeout_ms))
            if isinstance(self.broker, WaitingRedisBroker):
                # Idle consumers block on Redis: release them until they have all stopped
                # (one may block just after a release).
                while not stopped.done():
                    await asyncio.to_thread(self.broker.stop_waiting)
                    await asyncio.wait({stopped}, timeout=0.05)
            await stopped
            # The stopped worker's hook stays on the broker; a later worker adds its own.
            self.broker.middleware[:] = [
                m for m in self.broker.middleware if getattr(m, "worker", None) is not worker
            ]

    async def close(self) -> None:
        await self.stop_worker()
        await asyncio.to_thread(self.broker.close)

    # ---- figures -------------------------------------------------------------------------

    def _depth_sync(self) -> dict[str, dict[str, int]]:
        from dramatiq.common import dq_name

        out: dict[str, dict[str, int]] = {}
        broker: Any = self.broker
        for queue in self.queue_names:
            if isinstance(broker, StubBroker):
                ready = broker.queues[queue].qsize() if queue in broker.queues else 0
                delayed = (
                    broker.queues[dq_name(queue)].qsize() if dq_name(queue) in broker.queues else 0
                )
            elif hasattr(broker, "get_queue_message_counts"):  # RabbitMQ
                ready, delayed, _ = broker.get_queue_message_counts(queue)
            else:  # Redis: a list of message ids per queue
                ready = int(broker.client.llen(f"{broker.namespace}:{queue}"))
                delayed = int(broker.client.llen(f"{broker.namespace}:{dq_name(queue)}"))
            out[queue] = {"queued": ready, "delayed": delayed}
        return out

    async def depth(self) -> dict[str, dict[str, int]]:
        """Messages waiting per queue (ready and delayed), read from the broker."""
        if self.in_process:
            figures = self._depth_sync()
        else:
            figures = await asyncio.to_thread(self._depth_sync)
        for queue, counts in figures.items():
            metrics.JOBS_QUEUED.labels(queue).set(counts["queued"] + counts["delayed"])
        return figures

    async def counters(self) -> dict[str, dict[str, int]]:
        """Fleet-wide counts per task (kept in the cache, so every process adds to them)."""
        assert self.state is not None  # noqa: S101
        out: dict[str, dict[str, int]] = {}
        for name in sorted(self.actors):
            row: dict[str, int] = {}
            for outcome in OUTCOMES:
                raw = await self.state.cache.get(f"jobs:stats:{name}:{outcome}")
                row[outcome] = max(0, int(raw)) if raw else 0
            out[name] = row
        return out
