"""The row scope: whose rows the current code may touch, which PostgreSQL's row-level security
enforces. The scope lives in a context variable (a request's, a task's, a block's); before each
statement of an engine set up by `install_row_scope`, the transaction's settings
(`app.tenant_id`, `app.platform`) are made to match it, with the transaction's `BEGIN` when it
starts one (`ScopedConnection`). `authz.scoping` is the API the domains use."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass(frozen=True)
class RowScope:
    """Whose rows the current code may touch, enforced on PostgreSQL by row-level security.

    `tenant_id`: that tenant's rows; `platform`: every tenant's rows (sweeps, retention,
    platform statistics, lookups that find the tenant from a token or a stream key). Neither:
    no tenant-owned row at all. Set through `authz.tenancy` (which logs the platform scope).
    """

    tenant_id: uuid.UUID | None = None
    platform: bool = False


NO_ROWS = RowScope()
PLATFORM_ROWS = RowScope(platform=True)

_row_scope: ContextVar[RowScope] = ContextVar("bigfootlive_row_scope", default=NO_ROWS)
_APPLIED = "bigfootlive_row_scope"
_applying: ContextVar[bool] = ContextVar("bigfootlive_row_scope_applying", default=False)
_SET_SCOPE = "SELECT set_config('app.tenant_id', $1, true), set_config('app.platform', $2, true)"


def current_row_scope() -> RowScope:
    return _row_scope.get()


def bind_row_scope(scope: RowScope) -> None:
    """The scope of the rest of the current task (a request, a WebSocket, a process)."""
    _row_scope.set(scope)


@contextmanager
def row_scope(scope: RowScope) -> Iterator[None]:
    """The scope of the statements run inside the block (then the previous one again)."""
    token = _row_scope.set(scope)
    try:
        yield
    finally:
        _row_scope.reset(token)


class ScopedConnection(asyncpg.Connection):  # type: ignore[misc]
    """The asyncpg connection of the PostgreSQL engines: a transaction's `BEGIN` carries the
    row scope's settings (`pending_scope`, put there by `_apply_row_scope` just before the
    statement that starts the transaction), one round trip instead of two. Any other call
    drops a pending scope unused, so it can only ever join the `BEGIN` it was meant for."""

    pending_scope: str | None = None

    async def execute(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,  # noqa: ASYNC109 - asyncpg's own signature
    ) -> str:
        pending, self.pending_scope = self.pending_scope, None
        if pending is not None and not args and query.startswith("BEGIN"):
            query = f"{query}; {pending}"
        status: str = await super().execute(query, *args, timeout=timeout)
        return status


def scope_settings(scope: RowScope) -> str:
    """The scope's `set_config` calls as one literal statement (no parameters: the values are
    a UUID's canonical text and a constant, nothing else can be in them)."""
    tenant = str(uuid.UUID(str(scope.tenant_id))) if scope.tenant_id is not None else ""
    platform = "on" if scope.platform else ""
    return (
        f"SELECT set_config('app.tenant_id', '{tenant}', true), "
        f"set_config('app.platform', '{platform}', true)"
    )


def _apply_row_scope(conn: Connection, *_: Any) -> None:
    """Before each statement: make the transaction's settings match the current row scope.

    `set_config(..., true)` lasts until the end of the transaction, so the settings are sent
    before the first statement of each transaction and again only when the scope changes
    within it (a `platform_scope` block). Until they are, the policies show no tenant-owned
    row. At the start of a transaction they go with its `BEGIN` (`ScopedConnection`: the
    driver sends `BEGIN` just before the statement); within one, as a statement of their own
    through the connection, so a dropped connection fails (and is replaced) like any other
    statement.
    """
    if _applying.get():
        return
    scope = _row_scope.get()
    if conn.info.get(_APPLIED) == scope:
        return
    driver = conn.connection.driver_connection
    if isinstance(driver, ScopedConnection) and not driver.is_in_transaction():
        driver.pending_scope = scope_settings(scope)
        conn.info[_APPLIED] = scope
        return
    tenant = str(scope.tenant_id) if scope.tenant_id is not None else ""
    token = _applying.set(True)
    try:
        conn.exec_driver_sql(_SET_SCOPE, (tenant, "on" if scope.platform else ""))
    finally:
        _applying.reset(token)
    conn.info[_APPLIED] = scope


def _forget_row_scope(conn: Connection, *_: Any) -> None:
    if not conn.invalidated:  # an invalidated connection's settings went with it
        conn.info.pop(_APPLIED, None)


def install_row_scope(engine: AsyncEngine) -> None:
    target = engine.sync_engine
    event.listen(target, "before_execute", _apply_row_scope)
    # A new transaction, or the end of one (a rolled back savepoint undoes set_config too),
    # starts from the database's defaults again.
    for name in ("begin", "commit", "rollback", "rollback_savepoint"):
        event.listen(target, name, _forget_row_scope)
