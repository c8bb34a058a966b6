"""The tenants a sign-in names by slug, kept in the process (`TenantCache`).

A password sign-in reads its tenant (status, lockout and MFA policy) before anything else, and
the tenant's id sets the row scope of every statement after it: from the cache, the first
statement already runs in the tenant's scope and no statement is spent on the tenant. Any
committed change of a tenant's row (settings, status, slug, deletion) drops its entries on
every process (`kit.local_cache`: at the commit here, by pub/sub elsewhere, `TTL` at most).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.authz.scoping import act_for_nobody, act_for_tenant
from bigfootlive.kit.backends.base import PubSub
from bigfootlive.kit.detached import detached
from bigfootlive.kit.local_cache import LocalCache
from bigfootlive.models import Tenant
from bigfootlive.tenants import service as tenants

CHANNEL = "tenants:changed"
_COLUMNS = tuple(column.key for column in Tenant.__table__.columns)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    values: dict[str, Any]

    def tenant(self) -> Tenant:
        """A detached copy: reads like the loaded row; added to a session it is never inserted."""
        return detached(Tenant, self.values)


class TenantCache:
    def __init__(self, pubsub: PubSub, *, ttl: float) -> None:
        self.local: LocalCache[_Snapshot] = LocalCache(pubsub, CHANNEL, ttl=ttl)

    def watch(self, sessionmaker: Any) -> None:
        self.local.watch(sessionmaker, Tenant, lambda tenant: tenant.id)

    async def resolve(self, session: AsyncSession, slug: str | None, email: str) -> Tenant | None:
        """`tenants.service.resolve_tenant`, from the cache when the sign-in names a slug."""
        if not slug:
            return await tenants.resolve_tenant(session, slug, email)
        key = slug.lower()
        snapshot = self.local.get(key)
        if snapshot is None:
            generation = self.local.generation
            found = await tenants.get_tenant_by_slug(session, key)
            if found is None:
                act_for_nobody()
                return None
            snapshot = _Snapshot({name: getattr(found, name) for name in _COLUMNS})
            self.local.put(key, found.id, snapshot, generation)
        if not snapshot.values["is_active"]:
            act_for_nobody()
            return None
        act_for_tenant(snapshot.values["id"])
        return snapshot.tenant()

    async def invalidate(self, tenant_id: uuid.UUID) -> None:
        await self.local.invalidate([tenant_id])
