from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.authz.scoping import scoped
from bigfootlive.models import MfaBackupCode, MfaFactor


async def get_factor(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID, factor_id: uuid.UUID
) -> MfaFactor | None:
    stmt = scoped(select(MfaFactor), MfaFactor, tenant_id).where(
        MfaFactor.id == factor_id, MfaFactor.user_id == user_id
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def user_factors(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    confirmed_only: bool = True,
    types: Collection[str] | None = None,
) -> Sequence[MfaFactor]:
    stmt = scoped(select(MfaFactor), MfaFactor, tenant_id).where(MfaFactor.user_id == user_id)
    if confirmed_only:
        stmt = stmt.where(MfaFactor.confirmed_at.is_not(None))
    if types is not None:
        stmt = stmt.where(MfaFactor.type.in_(list(types)))
    stmt = stmt.order_by(MfaFactor.created_at, MfaFactor.id)
    return (await session.execute(stmt)).scalars().all()


async def count_factors(session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID) -> int:
    stmt = scoped(select(func.count()).select_from(MfaFactor), MfaFactor, tenant_id).where(
        MfaFactor.user_id == user_id
    )
    return int((await session.execute(stmt)).scalar_one())


async def find_webauthn_factor(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID, credential_id: str
) -> MfaFactor | None:
    stmt = scoped(select(MfaFactor), MfaFactor, tenant_id).where(
        MfaFactor.user_id == user_id,
        MfaFactor.type == "webauthn",
        MfaFactor.credential_id == credential_id,
        MfaFactor.confirmed_at.is_not(None),
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def advance_totp_step(session: AsyncSession, factor_id: uuid.UUID, step: int) -> bool:
    """Record `step` as used; False when it (or a later one) was already used (a replay)."""
    result = await session.execute(
        update(MfaFactor)
        .where(
            MfaFactor.id == factor_id,
            (MfaFactor.totp_last_step.is_(None)) | (MfaFactor.totp_last_step < step),
        )
        .values(totp_last_step=step)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def advance_sign_count(
    session: AsyncSession, factor_id: uuid.UUID, expected: int, new: int, now: dt.datetime
) -> bool:
    """Store the authenticator's new counter unless another request moved it meanwhile."""
    result = await session.execute(
        update(MfaFactor)
        .where(MfaFactor.id == factor_id, MfaFactor.sign_count == expected)
        .values(sign_count=new, last_used_at=now)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def delete_factors(session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID) -> int:
    result = await session.execute(
        delete(MfaFactor).where(MfaFactor.tenant_id == tenant_id, MfaFactor.user_id == user_id)
    )
    return int(getattr(result, "rowcount", 0))


async def delete_abandoned_setups(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID, before: dt.datetime
) -> None:
    """Forget unconfirmed factors whose setup began before `before` (too late to finish)."""
    await session.execute(
        delete(MfaFactor).where(
            MfaFactor.tenant_id == tenant_id,
            MfaFactor.user_id == user_id,
            MfaFactor.confirmed_at.is_(None),
            MfaFactor.created_at < before,
        )
    )


async def delete_pending_setup(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID, factor_id: uuid.UUID
) -> MfaFactor | None:
    """Forget the user's factor `factor_id` if it is not confirmed (in one statement: a
    confirmation that won the race keeps its factor); the factor forgotten, else None."""
    found = await get_factor(session, tenant_id, user_id, factor_id)
    if found is None or found.confirmed_at is not None:
        return None
    gone = await session.execute(
        delete(MfaFactor)
        .where(
            MfaFactor.tenant_id == tenant_id,
            MfaFactor.user_id == user_id,
            MfaFactor.id == factor_id,
            MfaFactor.confirmed_at.is_(None),
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(gone, "rowcount", 0) != 1:
        return None
    session.expunge(found)
    return found


async def delete_backup_codes(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    await session.execute(
        delete(MfaBackupCode).where(
            MfaBackupCode.tenant_id == tenant_id, MfaBackupCode.user_id == user_id
        )
    )


async def unused_backup_codes(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> int:
    stmt = scoped(select(func.count()).select_from(MfaBackupCode), MfaBackupCode, tenant_id).where(
        MfaBackupCode.user_id == user_id, MfaBackupCode.used_at.is_(None)
    )
    return int((await session.execute(stmt)).scalar_one())


async def claim_backup_code(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    candidate_hashes: list[str],
    now: dt.datetime,
) -> bool:
    """Mark the matching unused code used; False when none matches (or it was just used)."""
    stmt = scoped(select(MfaBackupCode.id), MfaBackupCode, tenant_id).where(
        MfaBackupCode.user_id == user_id,
        MfaBackupCode.used_at.is_(None),
        MfaBackupCode.code_hash.in_(candidate_hashes),
    )
    code_id = (await session.execute(stmt.limit(1))).scalar_one_or_none()
    if code_id is None:
        return False
    result = await session.execute(
        update(MfaBackupCode)
        .where(MfaBackupCode.id == code_id, MfaBackupCode.used_at.is_(None))
        .values(used_at=now)
    )
    return bool(getattr(result, "rowcount", 0) == 1)
