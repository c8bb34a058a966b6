"""A password sign-in's read and write on PostgreSQL: one round trip each, no ORM.

The database functions of migration 0025 set the row scope and run the statements in an
implicit transaction (`Database.call_scoped`): the read before the hash, the write after it,
so no connection and no transaction is held while the password is hashed, and neither goes
through a session (SQLAlchemy's unit of work cost more CPU than PostgreSQL spent running
them). Elsewhere (SQLite), in a request whose session has begun a transaction (its writes
must be seen), and for the rarer endings that change the account through the ORM (a rehash, an
MFA challenge), `sign_in` uses `repository` and the request's session.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from bigfootlive.db import Database, utcnow
from bigfootlive.identity.principals import PrincipalCache
from bigfootlive.identity.repository import SignInRead
from bigfootlive.kit.crypto import hash_token, random_token
from bigfootlive.kit.detached import detached
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import User

_USER_COLUMNS = tuple((column.key, column.name) for column in User.__table__.columns)
# The audit record's details, as `sign_in.login` writes them for a sign-in without a rehash
# (a rehash changes the account through the ORM, so it takes the session's path).
_DETAILS = json.dumps({"method": "pwd", "rehashed": False})


def detached_user(values: Any) -> User:
    """The account as a loaded, detached `User` (as if a query of another session had read it):
    `session.add` makes it persistent without a statement, its attributes unchanged."""
    return detached(User, {key: values[name] for key, name in _USER_COLUMNS})


async def read(
    db: Database,
    tenant_id: uuid.UUID,
    email: str,
    email_hash: str,
    *,
    factor_types: Collection[str] | None,
) -> SignInRead:
    """`repository.sign_in_read`, in one round trip (`bfl_sign_in_read`)."""
    types = list(factor_types) if factor_types is not None else None
    row = (await db.call_scoped("bfl_sign_in_read", tenant_id, email.lower(), email_hash, types))[0]
    values = row["r_user"]
    user = detached_user(values) if values is not None else None
    factors = row["r_factors"]
    return SignInRead(
        user=user,
        lockout_on_record=bool(row["r_lockout"]),
        locked_until=row["r_locked_until"],
        usable_factors=(int(factors or 0) if user is not None else 0)
        if factor_types is not None
        else None,
    )


@dataclass(frozen=True, slots=True)
class NewSession:
    id: uuid.UUID
    refresh_token: str
    auth_time: dt.datetime


async def write(
    db: Database,
    principals: PrincipalCache,
    *,
    user: User,
    meta: RequestMeta,
    amr: list[str],
    ttl_seconds: int,
    signed_in_at: dt.datetime,
    clear_lockout: str | None,
) -> NewSession | None:
    """The session, its refresh token, the sign-in's audit record, `last_login_at` and the
    lockout record forgotten (`clear_lockout`: its email hash), in one round trip
    (`bfl_sign_in_write`), committed when this returns. None, with nothing written, when the
    account is no longer as read (deactivated, or its password changed, during the hash).
    `last_login_at` is written outside the ORM: the tenant's member pages are read again on
    every process (`principals.members_changed`) before this returns. That stamp rewrite is
    the sign-in's second Redis round trip, and it must follow the commit: rewritten earlier
    (in the rate-limit call, say), a page read between the rewrite and the commit would be
    kept under the new stamp without this sign-in's time (`identity.member_pages`)."""
    now = utcnow()
    session_id = uuid.uuid4()
    refresh = random_token()
    rows = await db.call_scoped(
        "bfl_sign_in_write",
        user.tenant_id,
        user.id,
        user.password_hash,
        signed_in_at,
        now,
        clear_lockout,
        session_id,
        meta.user_agent,
        meta.ip,
        " ".join(amr),
        now + dt.timedelta(seconds=ttl_seconds),
        uuid.uuid4(),
        hash_token(refresh),
        uuid.uuid4(),
        meta.request_id,
        _DETAILS,
    )
    if not rows[0]["bfl_sign_in_write"]:
        return None
    await principals.members_changed(user.tenant_id)
    return NewSession(id=session_id, refresh_token=refresh, auth_time=now)
