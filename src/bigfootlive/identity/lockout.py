"""Sign-in lockout, per (tenant, email address) whether or not an account has the address.

After the tenant's threshold of consecutive failures the address is locked until an absolute
time, `base_delay_seconds` doubled for each further failure (at most `max_delay_seconds`);
attempts while locked are refused without being counted. A record is forgotten
`max_delay_seconds` after its last failure or the end of its lock. Addresses with and without an
account share one record, one clock and one code path, so neither the answers nor their timing
over minutes tell them apart.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.errors import TooManyRequests
from bigfootlive.identity import repository as repo
from bigfootlive.kit.crypto import hash_token
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import User
from bigfootlive.state import Infrastructure
from bigfootlive.tenants.schemas import LockoutPolicy


class AccountLocked(TooManyRequests):
    code = "account_locked"
    message = "Too many failed sign-ins; try again later"


def key(email: str) -> str:
    """The address as its lockout record names it."""
    return hash_token(email.lower())


def lock_delay(failures: int, policy: LockoutPolicy) -> int:
    """Seconds locked after `failures` consecutive failures: doubling past the threshold."""
    if failures < policy.threshold:
        return 0
    return int(
        min(
            policy.max_delay_seconds, policy.base_delay_seconds * 2 ** (failures - policy.threshold)
        )
    )


async def check(
    state: Infrastructure,
    meta: RequestMeta,
    *,
    tenant_id: uuid.UUID,
    user: User | None,
    on_record: bool,
    locked_until: dt.datetime | None,
    now: dt.datetime,
) -> bool:
    """Given the address's record as read (`repository.sign_in_read`: whether there is one,
    its `locked_until`): raise AccountLocked (with the seconds left) while the address is
    locked; else whether it has failures on record (if not, a successful sign-in has nothing
    to `clear`)."""
    if locked_until is None or locked_until <= now:
        return on_record
    user_id = user.id if user is not None else None
    await AuditLog.detached(state.db, meta, user_id).record(
        AuditAction.AUTH_LOGIN,
        tenant_id=tenant_id,
        target_type="user" if user is not None else None,
        target_id=user_id,
        details={"reason": "locked"},
    )
    raise AccountLocked(retry_after=math.ceil((locked_until - now).total_seconds()))


async def record_failure(
    state: Infrastructure,
    meta: RequestMeta,
    *,
    tenant_id: uuid.UUID,
    email: str,
    user: User | None,
    policy: LockoutPolicy,
    now: dt.datetime,
) -> None:
    """Count a failed sign-in and maybe lock, in a transaction of its own (the request fails)."""
    user_id = user.id if user is not None else None
    target_type = "user" if user is not None else None
    reason = "bad_password" if user is not None else "unknown_user"
    async with state.db.transaction() as tx:
        failures = await repo.count_login_failure(tx, tenant_id, key(email), now)
        delay = lock_delay(failures, policy)
        locked_until = now + dt.timedelta(seconds=delay) if delay else None
        await repo.set_lockout(
            tx,
            tenant_id,
            key(email),
            locked_until=locked_until,
            expires_at=(locked_until or now) + dt.timedelta(seconds=policy.max_delay_seconds),
        )
        if delay:
            await AuditLog(tx, meta, user_id).record(
                AuditAction.AUTH_LOCKOUT,
                tenant_id=tenant_id,
                result="failure",
                target_type=target_type,
                target_id=user_id,
                details={"failures": failures, "locked_seconds": delay, "reason": reason},
            )
        await AuditLog(tx, meta, user_id).record(
            AuditAction.AUTH_LOGIN,
            tenant_id=tenant_id,
            result="failure",
            target_type=target_type,
            target_id=user_id,
            details={"reason": reason, "failures": failures},
        )


async def clear(session: AsyncSession, tenant_id: uuid.UUID, email: str) -> None:
    """Forget the address's failures (a successful sign-in, a password reset)."""
    await repo.clear_lockout_record(session, tenant_id, key(email))
