"""The tenant's SSO policy for password sign-in, kept in the process (`SsoPolicyCache`).

Each password sign-in asks whether an enabled provider of the tenant requires SSO
(`sso.policy.check_password_login`): a query per sign-in for a fact a tenant admin changes once
in a while. This process keeps, per tenant, the providers that require it (their id and
break-glass list), and drops a tenant's entry on every process when any of its providers is
added, changed or deleted (`kit.local_cache`: at the commit here, by pub/sub elsewhere, the
TTL at most); a Core change of `sso_providers` must call `invalidate`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.kit.backends.base import PubSub
from bigfootlive.kit.local_cache import LocalCache
from bigfootlive.models import SsoProvider
from bigfootlive.sso import repository as repo

CHANNEL = "sso:policy-changed"


@dataclass(frozen=True, slots=True)
class SsoRequirement:
    """An enabled provider that requires SSO, and who may still use a password."""

    provider_id: uuid.UUID
    break_glass_emails: frozenset[str]  # lower-case; empty: every active admin


class SsoPolicyCache:
    def __init__(self, pubsub: PubSub, *, ttl: float) -> None:
        self.local: LocalCache[tuple[SsoRequirement, ...]] = LocalCache(pubsub, CHANNEL, ttl=ttl)

    def watch(self, sessionmaker: Any) -> None:
        self.local.watch(sessionmaker, SsoProvider, lambda provider: provider.tenant_id)

    async def requirements(
        self, session: AsyncSession, tenant_id: uuid.UUID
    ) -> Sequence[SsoRequirement]:
        found = self.local.get(tenant_id)
        if found is None:
            generation = self.local.generation
            found = tuple(
                SsoRequirement(
                    provider_id=provider.id,
                    break_glass_emails=frozenset(
                        e.lower() for e in provider.config.get("break_glass_emails") or []
                    ),
                )
                for provider in await repo.list_providers(session, tenant_id)
                if provider.enabled and provider.config.get("sso_required")
            )
            self.local.put(tenant_id, tenant_id, found, generation)
        return found

    async def invalidate(self, tenant_id: uuid.UUID) -> None:
        await self.local.invalidate([tenant_id])
