"""The calls of concurrent callers sent together, one round trip at a time (`Coalesced`): the
Redis cache's reads and writes (`kit.backends.redis`), the media server's go-lives of one tenant
(`events.repository.go_live`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalesced(Generic[T, R]):
    """The calls of concurrent callers in one round trip: a caller with none under way sends
    its own, together with those made in the same turn of the event loop (as the rate
    limiter's checks, `kit.ratelimit`); those that come while one is under way go together in
    the next (`send` answers a list of calls with a list of results), one round trip at a
    time. Each call is still sent after its caller made it and answered when the server has
    run it, so it sees every write completed before (a revocation, a rotated key) and its own
    write is done when it returns: what a round trip of its own would do. Busy, the process
    makes one round trip for many calls (redis-py's CPU per command, ~35-40 us, was most of a
    cache-answered callback's cost); Redis runs the calls of one round trip in turn, as it
    would have anyway. A failed round trip fails each of its calls with the same exception.

    The turn matters when callers come in step: the requests a busy server reads in one turn,
    or the callers of one round trip, all answered in one turn and each going on to its next
    call. Sending the first of them at once (as before) split each such group in two round
    trips, the first one's alone; waiting out the turn costs a lone caller one pass of the
    loop (no task: a caller that finds itself alone after it sends its own call itself)."""

    def __init__(self, send: Callable[[list[T]], Awaitable[list[R]]], name: str, most: int) -> None:
        self._send_calls = send
        self._name = name
        self._most = most  # calls in one round trip at most
        self._busy = False
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        # The sending tasks, referenced until done: the loop keeps only weak references to
        # tasks, and one awaiting a reply nothing else references could be collected mid-way.
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def idle(self) -> bool:
        """Nothing under way and nothing waiting."""
        return not self._busy and not self._pending

    async def __call__(self, call: T) -> R:
        loop = asyncio.get_running_loop()
        if self._busy:
            future: asyncio.Future[R] = loop.create_future()
            self._pending.append((call, future))
            return await future
        self._busy = True
        try:
            await asyncio.sleep(0)  # the callers of this same turn join the pending ones
        except BaseException:
            self._next()
            raise
        if not self._pending:  # alone: it sends its own call
            try:
                return (await self._send_calls([call]))[0]
            finally:
                self._next()
        # Sent by a task with the others, so that this caller's cancellation (its request
        # gone) cancels no one else's call; this caller waits as they do.
        mine: asyncio.Future[R] = loop.create_future()
        self._pending.insert(0, (call, mine))
        self._start()
        return await mine

    def _next(self) -> None:
        if self._pending:  # a task sends them; this caller goes on
            self._start()
        else:
            self._busy = False

    def _start(self) -> None:
        task = asyncio.create_task(self._send(), name=self._name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self) -> None:
        taken = self._pending[: self._most]
        del self._pending[: self._most]
        try:
            results = await self._send_calls([call for call, _ in taken])
        except Exception as exc:  # each caller hears it (a 503 when Redis is gone)
            for _, future in taken:
                if not future.done():
                    future.set_exception(exc)
        except BaseException:  # cancelled (the process stops): so is every waiting call
            for _, future in [*taken, *self._pending]:
                future.cancel()
            self._pending.clear()
            self._busy = False
            raise
        else:
            for (_, future), result in zip(taken, results, strict=True):
                if not future.done():  # its request may have been cancelled meanwhile
                    future.set_result(result)
        self._next()
