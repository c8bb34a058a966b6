"""Engines, sessions and the declarative base.

One session per request, committed once at the end (see `deps.get_session`); services never
commit. Side effects that must not happen for a rolled-back request (mail, pub/sub, jobs) are
registered with `after_commit` and run only once the transaction is durable.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, cast

import aiosqlite
import asyncpg  # type: ignore[import-untyped]
import structlog
from sqlalchemy import JSON, DateTime, MetaData, TypeDecorator, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError, StatementError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import greenlet_spawn

from bigfootlive.config import ConfigurationError, Settings
from bigfootlive.pgcalls import CallPool, gone, json_codecs
from bigfootlive.row_security import (
    RowScope,
    ScopedConnection,
    current_row_scope,
    install_row_scope,
    scope_settings,
)

log = structlog.get_logger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(dt.UTC)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value


JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime, dict[str, Any]: JSONType}


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def _sqlite_pragmas(dbapi_connection: Any, _: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _server_settings(settings: Settings) -> dict[str, str]:
    """Per-connection PostgreSQL settings: our name in pg_stat_activity, and how long a
    statement may wait for a lock (0: forever) before it fails with 503 database_busy."""
    values = {"application_name": settings.database_application_name}
    if settings.database_lock_timeout_ms:
        values["lock_timeout"] = str(settings.database_lock_timeout_ms)
    return values


class _RollbackOnClose(aiosqlite.Connection):
    """An aiosqlite connection that rolls back before it closes.

    A task cancelled between a statement and its fetch (a request given up, a worker stopped)
    leaves a cursor with a stepped statement, which the traceback keeps alive; SQLAlchemy then
    closes the connection, and `sqlite3_close_v2` with a statement still alive leaves a zombie
    that keeps its transaction, and with it the database's write lock, until the garbage
    collector finalises the cursor: every other writer got "database is locked" meanwhile.
    ROLLBACK first ends the transaction whatever statements remain."""

    async def close(self) -> None:
        if self._connection is not None:
            with suppress(Exception):
                await asyncio.shield(self.rollback())
        await super().close()


def _sqlite_connector(url: str) -> Callable[[], Awaitable[aiosqlite.Connection]]:
    args, kwargs = SQLiteDialect_aiosqlite().create_connect_args(make_url(url))
    open_file: Any = sqlite3.connect  # the same arguments as SQLAlchemy's own connect

    async def connect() -> aiosqlite.Connection:
        return await _RollbackOnClose(lambda: open_file(*args, **kwargs), 64)

    return connect


# A connection is closed instead of reused once it is this old (the engine's and the calls').
RECYCLE_SECONDS = 1800


def make_engine(url: str, settings: Settings) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url, echo=settings.database_echo, async_creator=_sqlite_connector(url)
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(
        url,
        echo=settings.database_echo,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_pre_ping=settings.database_pool_pre_ping,
        connect_args={
            "server_settings": _server_settings(settings),
            "connection_class": ScopedConnection,
        },
        pool_recycle=RECYCLE_SECONDS,
    )
    install_row_scope(engine)
    return engine


AfterCommit = Callable[[], Awaitable[None]]


def after_commit(session: AsyncSession | Session, action: AfterCommit) -> None:
    """Run `action` once the session's transaction has committed; dropped on rollback."""
    session.info.setdefault("after_commit", []).append(action)


async def run_after_commit(session: AsyncSession) -> None:
    actions: list[AfterCommit] = session.info.pop("after_commit", [])
    for action in actions:
        await run_committed(action)


async def run_committed(action: AfterCommit) -> None:
    """Run what follows a commit: a failure is logged, the committed work stands."""
    try:
        await action()
    except Exception:
        log.exception("after_commit_action_failed")


async def _abandon(
    pooled: PoolProxiedConnection, driver: Any, exc: Exception, sql: str, args: Sequence[Any]
) -> StatementError:
    """After a failed raw call: roll back, or drop the connection from the pool when even that
    fails (the pool must never hand out a connection inside our transaction); the error to
    raise, a lost connection marked as such (the database unavailable: 503, as for sessions)."""
    lost = driver.is_closed() or isinstance(exc, (asyncpg.ConnectionDoesNotExistError, OSError))
    try:
        if driver.is_closed():  # lost (a restart, a failover): its older peers went with it
            # as SQLAlchemy on a disconnect: all replaced; closing awaits, so in a greenlet
            await greenlet_spawn(pooled._pool._invalidate, pooled, exc)
        elif driver.is_in_transaction():
            await driver.execute("ROLLBACK")
    except Exception:
        await greenlet_spawn(pooled.invalidate)
    return DBAPIError.instance(sql, args, exc, Exception, connection_invalidated=lost)


def _call_error(exc: Exception, sql: str, args: Sequence[Any]) -> StatementError:
    """A failed `call_scoped` as SQLAlchemy would raise it (the handlers answer a lost
    connection with 503 database_unavailable)."""
    return DBAPIError.instance(sql, args, exc, Exception, connection_invalidated=gone(exc))


def _call_pool(engine: AsyncEngine, settings: Settings) -> CallPool | None:
    """`call_scoped`'s own connections (PostgreSQL): as many at once as the engine's pool
    keeps, connected as the engine connects (its URL, our server settings) with its JSON
    codecs (a function's json/jsonb columns come back as they would through the engine).
    None with `DATABASE_POOL_PRE_PING` (the engine's pool then tests each connection it hands
    out, which these calls keep too: they take it from there)."""
    if engine.dialect.name != "postgresql" or settings.database_pool_pre_ping:
        return None
    _, options = engine.dialect.create_connect_args(engine.url)
    options.pop("prepared_statement_cache_size", None)
    options.pop("prepared_statement_name_func", None)
    options["server_settings"] = _server_settings(settings)

    async def connect() -> asyncpg.Connection:
        conn = await asyncpg.connect(**options)
        try:
            await json_codecs(conn)
        except BaseException:
            conn.terminate()
            raise
        return conn

    return CallPool(connect, settings.database_pool_size, recycle=RECYCLE_SECONDS)


class _SessionOnDemand:
    """An `AsyncSession` made when first used: a unit of work that ends up needing none (a
    callback answered from the cache, or by a statement committed on its own) makes none
    (making and closing one costs ~25 us). Until then it is in no transaction, and `info`
    (where `after_commit` keeps its actions) is a dict of its own, handed to the session when
    it is made."""

    def __init__(self, make: async_sessionmaker[AsyncSession]) -> None:
        self._make = make
        self.made: AsyncSession | None = None
        self.info: dict[Any, Any] = {}

    def __getattr__(self, name: str) -> Any:  # any attribute not defined here: the session's
        if self.made is None:
            self.made = self._make()
            self.made.info.update(self.info)
            self.info = self.made.info
        return getattr(self.made, name)

    def in_transaction(self) -> bool:
        return self.made is not None and self.made.in_transaction()

    def __contains__(self, instance: object) -> bool:  # a dunder: not found by __getattr__
        return self.made is not None and instance in self.made

    async def rollback(self) -> None:
        if self.made is not None:
            await self.made.rollback()

    async def __aenter__(self) -> AsyncSession:
        return cast(AsyncSession, self)

    async def __aexit__(self, *exc: object) -> None:
        if self.made is not None:
            await self.made.__aexit__(*exc)


@dataclass
class Database:
    """`engine` / `sessionmaker`: the primary, for every write and every read that must see
    them. `read_engine` / `read_sessionmaker`: the streaming read replica (`DATABASE_READ_URL`)
    for analytics and report reads that may lag by the replication delay (`deps.ReportSession`);
    the primary itself when no replica is configured."""

    engine: AsyncEngine
    read_engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    read_sessionmaker: async_sessionmaker[AsyncSession]
    _statements: dict[Executable, tuple[str, tuple[str, ...], dict[str, Any]]] = field(
        default_factory=dict, repr=False
    )
    _raw_slots: asyncio.Semaphore | None = field(default=None, repr=False)
    # Per-process state of callers' calls sent together (e.g. `events.repository.go_live`'s
    # `kit.coalesce.Coalesced` per tenant), kept by the code that makes them.
    batches: dict[Any, Any] = field(default_factory=dict, repr=False)
    # PostgreSQL: the connections of `call_scoped` (`pgcalls`), beside the engine's pool.
    calls: CallPool | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        engine = make_engine(settings.database_url, settings)
        read_engine = (
            make_engine(settings.database_read_url, settings)
            if settings.database_read_url
            else engine
        )
        return cls(
            engine=engine,
            read_engine=read_engine,
            sessionmaker=async_sessionmaker(engine, expire_on_commit=False),
            read_sessionmaker=async_sessionmaker(read_engine, expire_on_commit=False),
            calls=_call_pool(engine, settings),
        )

    @asynccontextmanager
    async def transaction(self, *, on_demand: bool = False) -> AsyncIterator[AsyncSession]:
        """A unit of work outside a request: commits on success, then runs after-commit hooks.
        A session that never began a transaction has nothing to commit (and no round trip
        to make); its after-commit hooks still run (a change committed on its own, e.g.
        `events.repository.go_live`, announces itself through them). `on_demand`: the
        session is made when first used (`_SessionOnDemand`), for a hot path that often
        needs none (the media server's callbacks)."""
        made = _SessionOnDemand(self.sessionmaker) if on_demand else self.sessionmaker()
        async with made as session:
            try:
                yield session
                if session.in_transaction():
                    await session.commit()
            except BaseException:
                await session.rollback()
                raise
        await run_after_commit(session)

    @asynccontextmanager
    async def reads(self) -> AsyncIterator[AsyncConnection]:
        """A connection for a few Core reads on the primary (lists a user edits must show what
        was just written), with no ORM session. On PostgreSQL the reads run in one
        transaction: row-level security's tenant setting (`set_config(..., true)`) lasts a
        transaction, so under autocommit it would be gone before the query and the policies
        would show no row. SQLite reads autocommit."""
        async with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                async with conn.begin():
                    yield conn
            else:
                yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    async def read_rows(
        self, stmt: Executable, params: Mapping[str, Any] | None = None
    ) -> Sequence[Sequence[Any]]:
        """The rows of one hot Core read on the primary, in the current row scope, as tuples in
        the statement's column order. PostgreSQL: on a pooled asyncpg connection (`_pooled`),
        three round trips (`BEGIN READ ONLY` with the row scope, the statement, `COMMIT`), no
        SQLAlchemy execution or result processing (they cost more than the query on a list).
        Give a statement built once: its compiled form is kept per statement. SQLite: `reads()`."""
        if self.engine.dialect.name != "postgresql":
            async with self.reads() as conn:
                return (await conn.execute(stmt, dict(params or {}))).all()
        return await self._raw(stmt, params, "BEGIN READ ONLY")

    async def write_rows(
        self, stmt: Executable, params: Mapping[str, Any] | None = None
    ) -> Sequence[Sequence[Any]]:
        """One hot Core write (e.g. a conditional UPDATE ... RETURNING) in a transaction of its
        own, committed when this returns: as `read_rows`, three round trips and no SQLAlchemy
        execution on PostgreSQL. For a change that needs no other statement in its
        transaction; give a statement built once. SQLite: `engine.begin()`."""
        if self.engine.dialect.name != "postgresql":
            async with self.engine.begin() as conn:
                return (await conn.execute(stmt, dict(params or {}))).all()
        return await self._raw(stmt, params, "BEGIN")

    async def call_scoped(
        self,
        function: str,
        *args: Any,
        scope: RowScope | None = None,
        columns: Sequence[str] = (),
    ) -> Sequence[Mapping[str, Any]]:
        """`SELECT * FROM function(tenant scope, platform scope, *args)` in an implicit
        transaction: ONE round trip, committed when this returns. For the migrations' functions
        that set the row scope from their first two arguments, then read or change rows
        (`bfl_go_live`, `bfl_users_first_page`). `function` is from the code, never input.
        `scope`: the row scope to send, the current one by default. `columns`: those of the
        function's rows to read (all by default; each one more the driver decodes). On `calls`
        (connections of its own, `pgcalls.CallPool`) when there are, else one from the
        engine's pool."""
        scope = current_row_scope() if scope is None else scope
        tenant = str(uuid.UUID(str(scope.tenant_id))) if scope.tenant_id is not None else ""
        values = (tenant, "on" if scope.platform else "", *args)
        placeholders = ", ".join(f"${n}" for n in range(1, len(values) + 1))
        if not function.isidentifier() or not all(c.isidentifier() for c in columns):
            raise ValueError(f"not a function and column names: {function!r}, {columns!r}")
        read = ", ".join(columns) or "*"
        sql = f"SELECT {read} FROM {function}({placeholders})"  # noqa: S608 - names, then $n
        if self.calls is not None:
            try:
                return await self.calls.fetch(sql, values)
            except Exception as exc:
                raise _call_error(exc, sql, values) from exc
        async with self._pooled() as (pooled, driver):
            try:
                rows: Sequence[Mapping[str, Any]] = await driver.fetch(sql, *values)
            except Exception as exc:
                raise await _abandon(pooled, driver, exc, sql, values) from exc
        return rows

    @asynccontextmanager
    async def _pooled(self) -> AsyncIterator[tuple[PoolProxiedConnection, Any]]:
        """Straight from the pool (no SQLAlchemy `Connection` around one statement: ~40 us)
        for one raw call, and at most the pool's size of them at once: more wait rather than
        open overflow connections, which the pool closes on return (issue 17)."""
        if self._raw_slots is None:
            self._raw_slots = asyncio.Semaphore(getattr(self.engine.pool, "size", lambda: 10)())
        async with self._raw_slots:
            pooled = await self.engine.raw_connection()
            try:
                yield pooled, pooled.driver_connection
            finally:  # back to the pool, or closed if it overflowed (which awaits)
                await greenlet_spawn(pooled.close)

    async def _raw(
        self, stmt: Executable, params: Mapping[str, Any] | None, begin: str
    ) -> Sequence[Sequence[Any]]:
        sql, names, defaults = self._compiled(stmt)
        given = params or {}
        args = [given[name] if name in given else defaults[name] for name in names]
        async with self._pooled() as (pooled, driver):
            try:
                await driver.execute(f"{begin}; {scope_settings(current_row_scope())}")
                rows: Sequence[Sequence[Any]] = await driver.fetch(sql, *args)
                await driver.execute("COMMIT")
            except Exception as exc:
                raise await _abandon(pooled, driver, exc, sql, args) from exc
        return rows

    def _compiled(self, stmt: Executable) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        found = self._statements.get(stmt)
        if found is None:
            compiled = cast(
                SQLCompiler, cast(ClauseElement, stmt).compile(dialect=self.engine.dialect)
            )
            names = tuple(compiled.positiontup or ())
            found = (compiled.string, names, dict(compiled.params))
            if len(self._statements) < 256:  # cached statements only; a bound on mistakes
                self._statements[stmt] = found
        return found

    async def check_row_security(self, settings: Settings) -> bool:
        """Whether row-level security binds this process's database role (PostgreSQL).

        A superuser or a role with BYPASSRLS sees every row whatever the policies say: refused
        with NODE_ENV=production (unless DATABASE_ALLOW_RLS_BYPASS=true), a warning otherwise.
        SQLite: False, nothing to check (the `scoped()` helper is the only wall there).
        """
        if self.engine.dialect.name != "postgresql":
            return False
        try:
            async with self.engine.connect() as conn:
                row = (
                    await conn.exec_driver_sql(
                        "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles "
                        "WHERE rolname = current_user"
                    )
                ).one()
        except (OSError, SQLAlchemyError) as exc:  # the database is down: /ready says so
            log.warning("row_security_check_failed", error=type(exc).__name__)
            return False
        values: tuple[Any, ...] = tuple(row)
        role, superuser, bypass = values
        if not (superuser or bypass):
            return True
        problem = (
            f"DATABASE_URL connects as PostgreSQL role {role!r}, a "
            f"{'superuser' if superuser else 'role with BYPASSRLS'}: row-level security does "
            "not apply to it. Connect as an application role without either (README, "
            "'Row-level security'), or set DATABASE_ALLOW_RLS_BYPASS=true to run anyway."
        )
        if settings.node_env == "production" and not settings.database_allow_rls_bypass:
            raise ConfigurationError([problem])
        if not settings.database_allow_rls_bypass:
            log.warning("row_level_security_bypassed", role=role, detail=problem)
        return False

    async def dispose(self) -> None:
        if self.calls is not None:
            await self.calls.close()
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
