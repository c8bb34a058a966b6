"""Tenant isolation, twice.

1. `scoped`: the one way to query tenant-owned rows. `tests/test_architecture.py` fails when a
   module selects from a tenant-owned table without it (or a `# unscoped: <reason>` comment).
2. The row scope: on PostgreSQL the row-level security policies (migration 0017) show and
   accept only the rows of the tenant the code acts for, whatever the query says. The edge sets
   it from the authenticated tenant (`act_for_tenant`); code that must see every tenant (sweeps,
   retention, platform statistics, platform admins, lookups that find the tenant from a token
   or a stream key) says so with `platform_scope(reason)`, which is logged and counted
   (`lookup=True`: a lookup by a public identifier, on every request that carries one, is
   counted and logged at DEBUG only, so that it does not log a line per page view).
   SQLite has no row-level security: there `scoped` is the only wall.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

import structlog
from sqlalchemy import ColumnElement, Select
from sqlalchemy.orm import InstrumentedAttribute

from bigfootlive.observability.metrics import PLATFORM_SCOPES
from bigfootlive.row_security import NO_ROWS, PLATFORM_ROWS, RowScope, bind_row_scope, row_scope

log = structlog.get_logger(__name__)


class TenantOwned(Protocol):
    tenant_id: InstrumentedAttribute[uuid.UUID]


S = TypeVar("S", bound=Select[*tuple[Any, ...]])


def scoped(stmt: S, model: Any, tenant_id: uuid.UUID | ColumnElement[uuid.UUID]) -> S:
    """Restrict `stmt` to rows of `model` that belong to `tenant_id` (a value, or a column of
    an enclosing statement for a correlated subquery)."""
    column = model.tenant_id
    return stmt.where(column == tenant_id)


def act_for_tenant(tenant_id: uuid.UUID) -> None:
    """From now on in this task (request, WebSocket, job), only `tenant_id`'s rows."""
    bind_row_scope(RowScope(tenant_id=tenant_id))


def act_for_nobody() -> None:
    """From now on in this task, no tenant-owned row (the start of a request or a process)."""
    bind_row_scope(NO_ROWS)


@contextmanager
def tenant_scope(tenant_id: uuid.UUID) -> Iterator[None]:
    """Only `tenant_id`'s rows inside the block."""
    with row_scope(RowScope(tenant_id=tenant_id)):
        yield


def _audit_platform(reason: str, *, lookup: bool = False) -> None:
    PLATFORM_SCOPES.labels(reason=reason).inc()
    (log.debug if lookup else log.info)("platform_scope", reason=reason)


@contextmanager
def platform_scope(reason: str, *, lookup: bool = False) -> Iterator[None]:
    """Every tenant's rows inside the block; `reason` (a fixed string) is logged and counted.
    `lookup`: finding one row's tenant by a public identifier (an event id, a playback id, a
    stream key): counted, logged at DEBUG."""
    _audit_platform(reason, lookup=lookup)
    with row_scope(PLATFORM_ROWS):
        yield


def act_for_platform(reason: str) -> None:
    """Every tenant's rows for the rest of this task (a platform admin's request, a sweep
    loop, a worker process); logged and counted like `platform_scope`."""
    _audit_platform(reason)
    bind_row_scope(PLATFORM_ROWS)
