"""The cache's round trips of concurrent callers (`RedisCache`'s MGET and its write-then-publish
script) sent with less of redis-py around each (`RedisWire`), issue 17.

redis-py's `execute_command` costs ~36 us of CPU for an MGET of three keys that a write and a
read on the connection do in ~14 us (uvloop, measured on this repository's 2-core machine): its
pool takes and gives back a connection under a lock, with a check for unread data and metrics
hooks on each; its retry wrapper; a task per write for the socket timeout (`asyncio.wait_for`);
and its command packing, an encoder call per argument. A media server's first publish makes
two such round trips. Here a few connections of our own, made by the client's pool (the same
address, credentials, TLS, database and protocol; connected, and so set up, by redis-py), each
used by one call at a time, a command packed in one go, and the reply read by the connection's
own parser, the write and the read under one timeout of the client's `socket_timeout`.

A call that fails on its connection once sent (lost, timed out) leaves that connection and goes
through redis-py's own path (`execute_command`: its reconnection and retries, its exceptions:
a Redis gone is the same 503), as it would have gone in the first place; a connection that
cannot be opened (redis-py's connect, with its retries) fails the call; an error reply is
raised as redis-py raises it. A call cancelled mid-way takes its connection with it (its reply
may still be on the way)."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Arg = bytes | str | int | float

# What a connection that failed raises: it is dropped and the call goes through redis-py.
_LOST = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)


def pack(args: tuple[Arg, ...]) -> bytes:
    """One command in the Redis protocol (RESP): what redis-py's `pack_command` sends for the
    same bytes, strings (UTF-8) and numbers, in one buffer."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, int | float) and not isinstance(arg, bool):
            data = repr(arg).encode()
        else:
            raise TypeError(f"cannot send a {type(arg).__name__} to Redis")
        parts += (b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(parts)


class RedisWire:
    def __init__(self, client: Redis) -> None:
        self._client = client
        self._idle: list[AbstractConnection] = []
        # Connections in use, referenced here: an asyncio stream's protocol holds its reader
        # only weakly, so a connection known to nothing but the call awaiting its reply (and
        # that call's task, known to nothing but the reader's waiter) was a cycle the
        # collector could free mid-call ("Task was destroyed but it is pending!").
        self._busy: set[AbstractConnection] = set()
        self._timeout: float | None = client.connection_pool.connection_kwargs.get("socket_timeout")
        self._closed = False

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def call(self, *args: Arg) -> Any:
        """`args` (a command and its arguments) answered by Redis: its reply as the server sent
        it (redis-py's parser: bytes, None, lists, integers), which is what
        `client.execute_command(*args)` answers for a command without a response callback
        (MGET, EVALSHA; SET, say, is True there and b"OK" here)."""
        data = pack(args)
        conn = self._idle.pop() if self._idle else self._new()
        self._busy.add(conn)
        try:
            return await self._call_on(conn, data, args)
        finally:
            self._busy.discard(conn)

    async def _call_on(self, conn: AbstractConnection, data: bytes, args: tuple[Arg, ...]) -> Any:
        if not conn.is_connected:
            try:
                await conn.connect()  # type: ignore[no-untyped-call] # its own retries: final
            except BaseException:
                await conn.disconnect(nowait=True)
                raise
        try:
            async with asyncio.timeout(self._timeout):
                writer = conn._writer
                assert writer is not None  # noqa: S101 - connected just above
                writer.write(data)
                await writer.drain()
                parser: Any = conn._parser  # the connection's (hiredis, else redis-py's)
                response = await parser.read_response()
        except _LOST:
            await conn.disconnect(nowait=True)
            return await self._client.execute_command(*args)  # type: ignore[no-untyped-call]
        except BaseException:
            await conn.disconnect(nowait=True)
            raise
        if self._closed:
            await conn.disconnect(nowait=True)
        else:
            self._idle.append(conn)
        if isinstance(response, ResponseError):
            raise response
        return response

    def _new(self) -> AbstractConnection:
        made: AbstractConnection = self._client.connection_pool.make_connection()  # type: ignore[no-untyped-call]
        return made

    async def close(self) -> None:
        """Close the idle connections; one in use is closed when its call ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.disconnect(nowait=True)
