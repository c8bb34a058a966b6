"""A few asyncpg connections of our own for one-statement calls (`CallPool`): the database
functions that set their row scope and run in the statement's implicit transaction
(`Database.call_scoped`: `bfl_go_live_many`, `bfl_sign_in_read`, ...).

Such a call leaves nothing on its connection (no transaction, no session setting: the
functions' `set_config(..., true)` ends with the statement), so a connection goes back as it
is, with no reset. Taking one from SQLAlchemy's pool and giving it back (the engine's
`raw_connection()` and its `close()`, each through a greenlet) cost ~100 us of CPU per call,
and asyncpg's own pool ~40-70 us (a proxy object, a shielded task and an inactivity timer per
release; measured on this repository's 2-core machine, `SELECT 1` itself ~23 us); a list of
idle connections and a semaphore cost ~1 us (issue 17, the media server's first publish)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from pydantic_core import from_json

Connect = Callable[[], Awaitable[asyncpg.Connection]]


# The server ends the connection: shut down, restarting, or this backend terminated.
_ENDED = frozenset({"57P01", "57P02", "57P03"})


def gone(exc: BaseException) -> bool:
    """Whether `exc` from a call means its connection (and so, likely, the server) is gone:
    lost, ended by the server, or in a state its client no longer knows (asyncpg's internal
    errors after a connection broke mid-exchange)."""
    if isinstance(exc, asyncpg.PostgresError):
        state = str(getattr(exc, "sqlstate", "") or "")
        return state.startswith("08") or state in _ENDED
    return isinstance(
        exc, OSError | asyncpg.InterfaceError | asyncpg.InternalClientError | TimeoutError
    )


class CallPool:
    """At most `size` connections in use at once (more callers wait their turn rather than
    open more), opened when wanted, reused most recently returned first (the others then age
    out: `recycle` seconds after it was opened a connection is closed instead of reused, as
    SQLAlchemy's `pool_recycle`). A connection whose call failed is kept only if the server
    refused the statement (an SQL error) and it is in no transaction; one found lost also
    closes every idle one (the server went
    away: they went with it, as SQLAlchemy's pool invalidates itself on a disconnect), so a
    restart fails the calls under way, not each idle connection's next call. A call
    cancelled mid-way takes its connection with it (the server may still be running it)."""

    def __init__(self, connect: Connect, size: int, *, recycle: float) -> None:
        self._connect = connect
        self._slots = asyncio.Semaphore(size)
        self._idle: list[tuple[asyncpg.Connection, float]] = []  # (connection, opened at)
        self._recycle = recycle
        self._generation = 0  # bumped when a lost connection empties the pool
        self._closed = False

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def fetch(self, sql: str, args: Sequence[Any]) -> list[asyncpg.Record]:
        """`sql` with `args` on a connection of the pool: its rows. asyncpg's exceptions as
        they come (the caller wraps them)."""
        async with self._slots:
            conn, opened = await self._take()
            generation = self._generation
            try:
                rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            except Exception as exc:
                if conn.is_closed() or gone(exc):
                    conn.terminate()
                    self._expire()
                elif isinstance(exc, asyncpg.PostgresError) and not conn.is_in_transaction():
                    self._give_back(conn, opened, generation)  # the statement's own error
                else:  # anything else: the connection is not trusted with another call
                    conn.terminate()
                raise
            except BaseException:  # cancelled mid-call: its connection is not reusable
                conn.terminate()
                raise
            self._give_back(conn, opened, generation)
            return rows

    async def _take(self) -> tuple[asyncpg.Connection, float]:
        now = time.monotonic()
        while self._idle:
            conn, opened = self._idle.pop()
            if not conn.is_closed() and now - opened < self._recycle:
                return conn, opened
            _close_soon(conn)
        if self._closed:
            raise asyncpg.InterfaceError("the pool is closed")
        return await self._connect(), now

    def _give_back(self, conn: asyncpg.Connection, opened: float, generation: int) -> None:
        if self._closed or generation != self._generation or conn.is_closed():
            _close_soon(conn)
        else:
            self._idle.append((conn, opened))

    def _expire(self) -> None:
        self._generation += 1
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.terminate()

    async def close(self) -> None:
        """Close the idle connections; those in use are closed when their call ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            try:
                await conn.close(timeout=5)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                conn.terminate()


def _close_soon(conn: asyncpg.Connection) -> None:
    """Close `conn` without making the caller wait (terminated if already broken)."""
    if conn.is_closed():
        return
    task = asyncio.create_task(conn.close(timeout=5), name="pgcalls-close")
    task.add_done_callback(lambda t: t.cancelled() or t.exception())


async def json_codecs(conn: asyncpg.Connection) -> None:
    """json and jsonb as SQLAlchemy's asyncpg dialect sets them on its connections (values
    sent as JSON text, read back as Python objects), so that a call answers alike on both."""
    await conn.set_type_codec(
        "json", encoder=str.encode, decoder=_json, schema="pg_catalog", format="binary"
    )
    await conn.set_type_codec(
        "jsonb", encoder=_jsonb_encode, decoder=_jsonb, schema="pg_catalog", format="binary"
    )


# The depth-limited parser of `kit.jsonparse` (jiter), below which this layer sits.
def _json(raw: bytes) -> Any:
    return from_json(raw)


def _jsonb_encode(value: str) -> bytes:
    return b"\x01" + value.encode()  # jsonb's binary format: a version byte, then the text


def _jsonb(raw: bytes) -> Any:
    return from_json(raw[1:])
