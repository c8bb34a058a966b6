from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.authz.scoping import scoped
from bigfootlive.models import SsoIdentity, SsoProvider, TenantDomain, User


async def list_providers(session: AsyncSession, tenant_id: uuid.UUID) -> Sequence[SsoProvider]:
    stmt = scoped(select(SsoProvider), SsoProvider, tenant_id).order_by(
        SsoProvider.created_at, SsoProvider.id
    )
    return (await session.execute(stmt)).scalars().all()


async def get_provider(
    session: AsyncSession, tenant_id: uuid.UUID, provider_id: uuid.UUID
) -> SsoProvider | None:
    stmt = scoped(select(SsoProvider), SsoProvider, tenant_id).where(SsoProvider.id == provider_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def verified_domains(session: AsyncSession, tenant_id: uuid.UUID) -> set[str]:
    stmt = scoped(select(TenantDomain.domain), TenantDomain, tenant_id).where(
        TenantDomain.verified.is_(True)
    )
    return set((await session.execute(stmt)).scalars())


async def find_link(
    session: AsyncSession, tenant_id: uuid.UUID, provider_id: uuid.UUID, subject: str
) -> tuple[SsoIdentity, User] | None:
    stmt = (
        scoped(select(SsoIdentity, User), SsoIdentity, tenant_id)
        .join(User, User.id == SsoIdentity.user_id)
        .where(
            SsoIdentity.provider_id == provider_id,
            SsoIdentity.subject == subject,
            User.tenant_id == tenant_id,
        )
    )
    row = (await session.execute(stmt)).one_or_none()
    return None if row is None else (row[0], row[1])


async def providers_to_refresh(session: AsyncSession) -> list[uuid.UUID]:
    """Enabled providers whose IdP publishes metadata we cache or store (OIDC, SAML)."""
    # unscoped: the metadata refresh works for every tenant.
    stmt = (
        select(SsoProvider.id)
        .where(SsoProvider.enabled.is_(True), SsoProvider.protocol.in_(("oidc", "saml")))
        .order_by(SsoProvider.id)
    )
    return list((await session.execute(stmt)).scalars())


async def get_provider_unscoped(
    session: AsyncSession, provider_id: uuid.UUID, *, for_update: bool = False
) -> SsoProvider | None:
    # unscoped: a refresh job is given a provider id by the fan-out, which read it from this table.
    stmt = select(SsoProvider).where(SsoProvider.id == provider_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()
