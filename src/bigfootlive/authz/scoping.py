"""The one way to query tenant-owned rows: every such query goes through `scoped`.

`tests/test_architecture.py` fails when a module selects from a tenant-owned table without it.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute


class TenantOwned(Protocol):
    tenant_id: InstrumentedAttribute[uuid.UUID]


S = TypeVar("S", bound=Select[*tuple[Any, ...]])


def scoped(stmt: S, model: Any, tenant_id: uuid.UUID) -> S:
    """Restrict `stmt` to rows of `model` that belong to `tenant_id`."""
    column = model.tenant_id
    return stmt.where(column == tenant_id)
