from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit.filters import AuditFilter
from bigfootlive.authz.scoping import act_for_tenant, platform_scope, scoped
from bigfootlive.kit.pagination import paginate
from bigfootlive.models import (
    AuditRecord,
    AuthSession,
    LoginLockout,
    PasswordHistory,
    PendingRegistration,
    RefreshToken,
    User,
    UserToken,
)


async def get_user_by_email(session: AsyncSession, tenant_id: uuid.UUID, email: str) -> User | None:
    stmt = scoped(select(User), User, tenant_id).where(User.email == email.lower())
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_user(session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID) -> User | None:
    stmt = scoped(select(User), User, tenant_id).where(User.id == user_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def recent_password_hashes(session: AsyncSession, user_id: uuid.UUID, n: int) -> list[str]:
    if n <= 0:
        return []
    rows = await session.execute(
        select(PasswordHistory.password_hash)
        .where(PasswordHistory.user_id == user_id)
        .order_by(PasswordHistory.created_at.desc())
        .limit(n)
    )
    return list(rows.scalars())


async def find_refresh_token(
    session: AsyncSession, token_hash: str
) -> tuple[RefreshToken, AuthSession] | None:
    # unscoped: the token itself names its session; the tenant comes from that row.
    with platform_scope("refresh token lookup"):
        row = (
            await session.execute(
                select(RefreshToken, AuthSession)
                .join(AuthSession, AuthSession.id == RefreshToken.session_id)
                .where(RefreshToken.token_hash == token_hash)
            )
        ).one_or_none()
    if row is None:
        return None
    act_for_tenant(row[1].tenant_id)  # the token's tenant, from here on
    return (row[0], row[1])


async def claim_refresh_token(session: AsyncSession, token_id: uuid.UUID, now: dt.datetime) -> bool:
    """Mark a refresh token used; False when another request already used it (atomic)."""
    result = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token_id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def user_sessions(
    session: AsyncSession, user_id: uuid.UUID, now: dt.datetime
) -> Sequence[AuthSession]:
    # unscoped: the caller passes a user id it has already scoped.
    rows = await session.execute(
        select(AuthSession)
        .where(
            AuthSession.user_id == user_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > now,
        )
        .order_by(AuthSession.created_at.desc())
    )
    return rows.scalars().all()


async def active_session_ids(session: AsyncSession, user_id: uuid.UUID) -> list[uuid.UUID]:
    # unscoped: the caller passes a user id it has already scoped.
    rows = await session.execute(
        select(AuthSession.id).where(
            AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
        )
    )
    return list(rows.scalars())


async def revoke_sessions(
    session: AsyncSession, session_ids: list[uuid.UUID], now: dt.datetime, reason: str
) -> None:
    if session_ids:
        await session.execute(
            update(AuthSession)
            .where(AuthSession.id.in_(session_ids), AuthSession.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
        )


async def get_lockout(
    session: AsyncSession, tenant_id: uuid.UUID, email_hash: str
) -> LoginLockout | None:
    stmt = scoped(select(LoginLockout), LoginLockout, tenant_id).where(
        LoginLockout.email_hash == email_hash
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def count_login_failure(
    session: AsyncSession, tenant_id: uuid.UUID, email_hash: str, now: dt.datetime
) -> int:
    """Add a failure to the address's record (a forgotten one starts again); the new count."""
    insert: Any = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    table = LoginLockout.__table__
    forgotten = table.c.expires_at <= now
    stmt = insert(table).values(
        tenant_id=tenant_id, email_hash=email_hash, failures=1, locked_until=None, expires_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant_id", "email_hash"],
        set_={"failures": case((forgotten, 1), else_=table.c.failures + 1)},
    ).returning(table.c.failures)
    return int((await session.execute(stmt)).scalar_one())


async def set_lockout(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    email_hash: str,
    *,
    locked_until: dt.datetime | None,
    expires_at: dt.datetime,
) -> None:
    await session.execute(
        update(LoginLockout)
        .where(LoginLockout.tenant_id == tenant_id, LoginLockout.email_hash == email_hash)
        .values(locked_until=locked_until, expires_at=expires_at)
    )


async def clear_lockout(session: AsyncSession, tenant_id: uuid.UUID, email_hash: str) -> None:
    await session.execute(
        delete(LoginLockout).where(
            LoginLockout.tenant_id == tenant_id, LoginLockout.email_hash == email_hash
        )
    )


async def find_pending_registration(
    session: AsyncSession, token_hash: str
) -> PendingRegistration | None:
    # unscoped: the emailed token itself names the tenant.
    stmt = select(PendingRegistration).where(PendingRegistration.token_hash == token_hash)
    with platform_scope("registration token lookup"):
        found = (await session.execute(stmt)).scalar_one_or_none()
    if found is not None:
        act_for_tenant(found.tenant_id)  # the token's tenant, from here on
    return found


async def claim_pending_registration(session: AsyncSession, registration_id: uuid.UUID) -> bool:
    """Delete the registration; False when another request already did (single use)."""
    result = await session.execute(
        delete(PendingRegistration).where(PendingRegistration.id == registration_id)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def drop_pending_registrations(
    session: AsyncSession, tenant_id: uuid.UUID, email: str
) -> None:
    await session.execute(
        delete(PendingRegistration).where(
            PendingRegistration.tenant_id == tenant_id, PendingRegistration.email == email
        )
    )


async def find_user_token(session: AsyncSession, token_hash: str, purpose: str) -> UserToken | None:
    # unscoped: a single-use token names its user and tenant.
    stmt = select(UserToken).where(UserToken.token_hash == token_hash, UserToken.purpose == purpose)
    with platform_scope("user token lookup"):
        found = (await session.execute(stmt)).scalar_one_or_none()
    if found is not None:
        act_for_tenant(found.tenant_id)  # the token's tenant, from here on
    return found


async def audit_for_user(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID | None,
    *,
    filters: AuditFilter,
    cursor: str | None,
    limit: int,
) -> Sequence[AuditRecord]:
    stmt = filters.apply(scoped(select(AuditRecord), AuditRecord, tenant_id))
    if user_id is not None:
        stmt = stmt.where(
            or_(
                AuditRecord.actor_id == user_id,
                (AuditRecord.target_type == "user") & (AuditRecord.target_id == str(user_id)),
            )
        )
    stmt = paginate(stmt, AuditRecord.created_at, AuditRecord.id, cursor=cursor, limit=limit)
    return (await session.execute(stmt)).scalars().all()
