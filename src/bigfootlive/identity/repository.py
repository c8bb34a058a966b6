from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, insert, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from bigfootlive.audit.filters import AuditFilter
from bigfootlive.authz.scoping import act_for_tenant, platform_scope, scoped
from bigfootlive.db import Base, utcnow
from bigfootlive.identity.principals import user_rows_written
from bigfootlive.kit.pagination import paginate
from bigfootlive.models import (
    AuditRecord,
    AuthSession,
    LoginLockout,
    MfaFactor,
    PasswordHistory,
    PendingRegistration,
    RefreshToken,
    User,
    UserToken,
)


async def get_user_by_email(session: AsyncSession, tenant_id: uuid.UUID, email: str) -> User | None:
    stmt = scoped(select(User), User, tenant_id).where(User.email == email.lower())
    return (await session.execute(stmt)).scalar_one_or_none()


@dataclass(frozen=True, slots=True)
class SignInRead:
    """What a password sign-in reads before the hash, in one statement."""

    user: User | None
    lockout_on_record: bool  # the address has a lockout record (failures or a lock)
    locked_until: dt.datetime | None
    usable_factors: int | None  # the user's confirmed factors of `factor_types` (None: not read)


def _sign_in_read_statement(with_factors: bool) -> Any:
    # Built once (module level): a statement built per call costs more CPU to construct and
    # to key for SQLAlchemy's compiled cache than PostgreSQL spends running it.
    one_row = select(literal(1).label("one")).subquery("one_row")
    tenant_id = bindparam("tenant_id", type_=User.__table__.c.tenant_id.type)
    columns: list[Any] = [User, LoginLockout.email_hash, LoginLockout.locked_until]
    if with_factors:
        columns.append(
            select(func.count())
            .where(
                MfaFactor.tenant_id == tenant_id,
                MfaFactor.user_id == User.id,
                MfaFactor.confirmed_at.is_not(None),
                MfaFactor.type.in_(bindparam("factor_types", expanding=True)),
            )
            .scalar_subquery()
        )
    return (
        select(*columns)
        .select_from(one_row)
        .outerjoin(User, and_(User.tenant_id == tenant_id, User.email == bindparam("email")))
        .outerjoin(
            LoginLockout,
            and_(
                LoginLockout.tenant_id == tenant_id,
                LoginLockout.email_hash == bindparam("email_hash"),
            ),
        )
    )


_SIGN_IN_READ = {flag: _sign_in_read_statement(flag) for flag in (False, True)}


async def sign_in_read(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    email: str,
    email_hash: str,
    *,
    factor_types: Collection[str] | None,
) -> SignInRead:
    """The account with this address, the address's lockout record and (with `factor_types`)
    how many confirmed second factors of those types the account has: one statement, whether
    or not the account or the record exists."""
    # unscoped: every table is pinned to `tenant_id` in its join condition.
    params: dict[str, Any] = {
        "tenant_id": tenant_id,
        "email": email.lower(),
        "email_hash": email_hash,
    }
    if factor_types is not None:
        params["factor_types"] = list(factor_types)
    row = (await session.execute(_SIGN_IN_READ[factor_types is not None], params)).one()
    return SignInRead(
        user=row[0],
        lockout_on_record=row[1] is not None,
        locked_until=row[2],
        usable_factors=(int(row[3] or 0) if row[0] is not None else 0)
        if factor_types is not None
        else None,
    )


_SignInWrite = tuple[tuple[Any, ...], bool, bool]  # the rows' tables, lockout cleared, user updated
_SIGN_IN_WRITES: dict[_SignInWrite, Any] = {}


def _sign_in_write_statement(shape: _SignInWrite) -> Any:
    """The write of `insert_sign_in_rows` for one shape, built once: row n's column c is the
    parameter `r{n}_{c}`."""
    found = _SIGN_IN_WRITES.get(shape)
    if found is not None:
        return found
    tables, clears_lockout, updates_user = shape
    ctes: list[Any] = []
    for n, table in enumerate(tables):
        values = {c.key: bindparam(f"r{n}_{c.key}", type_=c.type) for c in table.columns}
        ctes.append(insert(table).values(values).returning(table.c.id).cte(f"row{n}"))
    if clears_lockout:
        lockouts: Any = LoginLockout.__table__
        ctes.append(
            delete(lockouts)
            .where(
                lockouts.c.tenant_id
                == bindparam("lockout_tenant_id", type_=lockouts.c.tenant_id.type),
                lockouts.c.email_hash == bindparam("lockout_email_hash"),
            )
            .returning(lockouts.c.tenant_id)
            .cte("cleared")
        )
    users: Any = User.__table__
    stmt: Any = (
        update(users)
        .where(users.c.id == bindparam("user_id", type_=users.c.id.type))
        .values(
            last_login_at=bindparam("signed_in_at", type_=users.c.last_login_at.type),
            updated_at=bindparam("updated_at", type_=users.c.updated_at.type),
        )
        if updates_user
        else select(literal(1))
    )
    stmt = stmt.add_cte(*ctes)
    _SIGN_IN_WRITES[shape] = stmt
    return stmt


async def insert_sign_in_rows(
    session: AsyncSession,
    rows: Sequence[Base],
    *,
    user: User,
    signed_in_at: dt.datetime | None = None,
    clear_lockout: str | None = None,
) -> None:
    """Insert a new session's rows (the session first, then the rows that reference it, e.g.
    its refresh token and the audit record) and, for a password sign-in, the user's
    `last_login_at` and the address's lockout record to forget (its email hash).

    PostgreSQL: ONE statement, the inserts and the delete as data-modifying CTEs of the
    UPDATE (foreign keys are checked at the end of the statement). The user's row is changed
    without the ORM: `last_login_at` is in no cached principal's answer, so no process need
    read the user again; the member list shows it (`principals.user_rows_written`). Elsewhere:
    through the ORM, as any change."""
    if session.get_bind().dialect.name != "postgresql":
        first, *rest = rows
        session.add(first)
        await session.flush()  # the rows after it reference it
        session.add_all(rest)
        if signed_in_at is not None:
            user.last_login_at = signed_in_at
        if clear_lockout is not None:
            await clear_lockout_record(session, user.tenant_id, clear_lockout)
        return
    tables = tuple(type(row).__table__ for row in rows)
    params: dict[str, Any] = {}
    for n, (row, table) in enumerate(zip(rows, tables, strict=True)):
        for column in table.columns:
            params[f"r{n}_{column.key}"] = getattr(row, column.key)
    if clear_lockout is not None:
        params["lockout_tenant_id"] = user.tenant_id
        params["lockout_email_hash"] = clear_lockout
    if signed_in_at is not None:
        params["user_id"] = user.id
        params["signed_in_at"] = signed_in_at
        params["updated_at"] = updated_at = utcnow()  # as the ORM's onupdate would
    shape = (tables, clear_lockout is not None, signed_in_at is not None)
    await session.execute(_sign_in_write_statement(shape), params)
    if signed_in_at is not None:
        set_committed_value(user, "last_login_at", signed_in_at)
        set_committed_value(user, "updated_at", updated_at)
        user_rows_written(session, user.tenant_id)  # the member list shows `last_login_at`


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


async def clear_lockout_record(
    session: AsyncSession, tenant_id: uuid.UUID, email_hash: str
) -> None:
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
