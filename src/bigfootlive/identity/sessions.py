"""Sessions: starting one, refreshing its tokens (with reuse detection), ending them.
Knows nothing of HTTP."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import NoReturn

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.subject import AuthSubject, TenantInactive
from bigfootlive.db import Base, utcnow
from bigfootlive.errors import NotFound, Unauthorized
from bigfootlive.identity import repository as repo
from bigfootlive.identity.accounts import user_out
from bigfootlive.identity.ports import IdentityState
from bigfootlive.identity.schemas import TokenPair
from bigfootlive.kit.crypto import hash_token, random_token
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import AuditRecord, AuthSession, RefreshToken, Tenant, User
from bigfootlive.tenants import service as tenants


class InvalidRefreshToken(Unauthorized):
    code = "invalid_refresh_token"
    message = "The refresh token is not valid"


# ---------------------------------------------------------------- start and refresh


async def start_session(
    state: IdentityState,
    session: AsyncSession,
    *,
    user: User,
    tenant: Tenant,
    meta: RequestMeta,
    amr: list[str],
    audit: AuditRecord | None = None,
    signed_in_at: dt.datetime | None = None,
    clear_lockout: str | None = None,
) -> TokenPair:
    """Create a session row and its first token pair. Every sign-in method ends here.

    A password sign-in passes its audit record, its time (`last_login_at`) and the lockout
    record to forget, written with the session's rows (one statement on PostgreSQL)."""
    now = utcnow()
    auth_session = AuthSession(
        id=uuid.uuid4(),
        tenant_id=user.tenant_id,
        user_id=user.id,
        user_agent=meta.user_agent,
        ip=meta.ip,
        amr=" ".join(amr),
        auth_time=now,
        created_at=now,
        last_seen_at=now,
        expires_at=now + dt.timedelta(seconds=state.settings.refresh_token_ttl_seconds),
        revoked_at=None,
        revoked_reason=None,
    )
    refresh, token_row = _refresh_token(auth_session, now)
    rows: list[Base] = [auth_session, token_row]
    if audit is not None:
        rows.append(audit)
    await repo.insert_sign_in_rows(
        session, rows, user=user, signed_in_at=signed_in_at, clear_lockout=clear_lockout
    )
    return session_pair(
        state, user=user, tenant_slug=tenant.slug, auth_session=auth_session, refresh=refresh
    )


def _refresh_token(auth_session: AuthSession, now: dt.datetime) -> tuple[str, RefreshToken]:
    refresh = random_token()
    row = RefreshToken(
        id=uuid.uuid4(),
        session_id=auth_session.id,
        token_hash=hash_token(refresh),
        created_at=now,
        used_at=None,
    )
    return refresh, row


def token_pair(
    state: IdentityState,
    *,
    user: User,
    tenant_slug: str,
    session_id: uuid.UUID,
    amr: list[str],
    auth_time: dt.datetime,
    refresh: str,
) -> TokenPair:
    roles = [user.role, *(["platform_admin"] if user.is_platform_admin else [])]
    access, _ = state.tokens.issue(
        user_id=user.id,
        tenant_id=user.tenant_id,
        session_id=session_id,
        roles=roles,
        amr=amr,
        auth_time=auth_time,
    )
    return TokenPair(
        access_token=access,
        expires_in=state.tokens.ttl,
        refresh_token=refresh,
        session_id=session_id,
        user=user_out(user, tenant_slug),
    )


def session_pair(
    state: IdentityState, *, user: User, tenant_slug: str, auth_session: AuthSession, refresh: str
) -> TokenPair:
    """The token pair of `auth_session` (its first, or a refreshed one)."""
    return token_pair(
        state,
        user=user,
        tenant_slug=tenant_slug,
        session_id=auth_session.id,
        amr=auth_session.amr.split(),
        auth_time=auth_session.auth_time,
        refresh=refresh,
    )


async def refresh(
    state: IdentityState, session: AsyncSession, meta: RequestMeta, *, refresh_token: str
) -> TokenPair:
    found = await repo.find_refresh_token(session, hash_token(refresh_token))
    if found is None:
        raise InvalidRefreshToken()
    token, auth_session = found
    if token.used_at is not None:
        # A used token presented again is a reuse whatever became of its session since (a
        # concurrent reuse may already have ended it): each one is refused and audited as such.
        await _refuse_reuse(state, session, meta, auth_session)
    now = utcnow()
    if auth_session.revoked_at is not None or auth_session.expires_at <= now:
        raise InvalidRefreshToken("The session has ended", code="session_revoked")
    idle = dt.timedelta(seconds=state.settings.session_idle_timeout_seconds)
    if auth_session.last_seen_at + idle <= now:
        await _end_sessions_detached(
            state, meta, auth_session, reason="idle_timeout", result="success"
        )
        raise InvalidRefreshToken("The session has ended", code="session_revoked")
    if not await repo.claim_refresh_token(session, token.id, now):
        await _refuse_reuse(state, session, meta, auth_session)
    user = await repo.get_user(session, auth_session.tenant_id, auth_session.user_id)
    tenant = await tenants.get_tenant(session, auth_session.tenant_id)
    if user is None or tenant is None or not user.is_active:
        raise InvalidRefreshToken()
    if not tenant.is_active and not user.is_platform_admin:
        raise TenantInactive()
    auth_session.last_seen_at = now
    auth_session.ip = meta.ip
    new_refresh, token_row = _refresh_token(auth_session, now)
    session.add(token_row)
    return session_pair(
        state, user=user, tenant_slug=tenant.slug, auth_session=auth_session, refresh=new_refresh
    )


async def _refuse_reuse(
    state: IdentityState, session: AsyncSession, meta: RequestMeta, auth_session: AuthSession
) -> NoReturn:
    """End the session a reused refresh token belongs to, audit the reuse and refuse it."""
    # A claim that lost the race still opened a write transaction: on SQLite that holds the
    # database's one write lock, and the revocation below (another connection) would wait for it
    # until the busy timeout. Nothing of this request is kept, so let go of it first (expunged,
    # the session row keeps its loaded fields through the rollback).
    session.expunge(auth_session)
    await session.rollback()
    await _end_sessions_detached(state, meta, auth_session, reason="refresh_token_reuse")
    raise InvalidRefreshToken(
        "The refresh token was already used; the session has been ended",
        code="refresh_token_reused",
    )


async def _end_sessions_detached(
    state: IdentityState,
    meta: RequestMeta,
    auth_session: AuthSession,
    *,
    reason: str,
    result: str = "failure",
) -> None:
    async with state.db.transaction() as tx:
        await repo.revoke_sessions(tx, [auth_session.id], utcnow(), reason)
        await AuditLog(tx, meta, auth_session.user_id).record(
            AuditAction.AUTH_REFRESH_REUSE
            if reason == "refresh_token_reuse"
            else AuditAction.AUTH_SESSION_END,
            tenant_id=auth_session.tenant_id,
            result=result,
            target_type="session",
            target_id=auth_session.id,
            details={"reason": reason},
        )
    await state.revoked.revoke(auth_session.id, user_id=auth_session.user_id)


# ---------------------------------------------------------------- sessions


async def end_sessions(
    state: IdentityState,
    session: AsyncSession,
    meta: RequestMeta,
    *,
    actor: AuthSubject | None,
    user: User,
    session_ids: list[uuid.UUID],
    reason: str,
) -> None:
    if not session_ids:
        return
    await repo.revoke_sessions(session, session_ids, utcnow(), reason)
    for sid in session_ids:
        await state.revoked.revoke(sid, user_id=user.id)
    await AuditLog(session, meta, actor.user_id if actor else user.id).record(
        AuditAction.AUTH_SESSION_END,
        tenant_id=user.tenant_id,
        target_type="user",
        target_id=user.id,
        details={"sessions": [str(s) for s in session_ids], "reason": reason},
    )


async def logout(
    state: IdentityState, session: AsyncSession, meta: RequestMeta, subject: AuthSubject
) -> None:
    await end_sessions(
        state,
        session,
        meta,
        actor=subject,
        user=subject.user,
        session_ids=[subject.session_id],
        reason="logout",
    )


async def list_sessions(session: AsyncSession, subject: AuthSubject) -> Sequence[AuthSession]:
    return await repo.user_sessions(session, subject.user_id, utcnow())


async def terminate_session(
    state: IdentityState,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    session_id: uuid.UUID,
) -> None:
    target = await session.get(AuthSession, session_id)
    if target is None or target.user_id != subject.user_id or target.revoked_at is not None:
        raise NotFound("No such session", code="session_not_found")
    await end_sessions(
        state,
        session,
        meta,
        actor=subject,
        user=subject.user,
        session_ids=[session_id],
        reason="terminated",
    )


# ---------------------------------------------------------------- a member's sessions (admins)


async def member_sessions(
    session: AsyncSession, actor: AuthSubject, user_id: uuid.UUID
) -> tuple[User, Sequence[AuthSession]]:
    """A member of the actor's tenant and their open sessions; another tenant's: not found."""
    user = await repo.get_user(session, actor.tenant_id, user_id)
    if user is None:
        raise NotFound("No such user", code="user_not_found")
    return user, await repo.user_sessions(session, user.id, utcnow())


async def end_member_session(
    state: IdentityState,
    session: AsyncSession,
    meta: RequestMeta,
    actor: AuthSubject,
    user_id: uuid.UUID,
    session_id: uuid.UUID | None,
) -> int:
    """End one session of a member (or all of them with `session_id=None`); how many ended."""
    user, open_sessions = await member_sessions(session, actor, user_id)
    ids = [s.id for s in open_sessions if session_id is None or s.id == session_id]
    if session_id is not None and not ids:
        raise NotFound("No such session", code="session_not_found")
    await end_sessions(
        state, session, meta, actor=actor, user=user, session_ids=ids, reason="ended_by_admin"
    )
    return len(ids)
