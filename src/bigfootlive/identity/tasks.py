"""Identity housekeeping jobs."""

from __future__ import annotations

import datetime as dt

import structlog
from sqlalchemy import delete, or_

from bigfootlive.composition import AppState
from bigfootlive.db import utcnow
from bigfootlive.jobs.registry import JobContext, Priority, cron, task
from bigfootlive.models import AuthSession, LoginLockout, PendingRegistration, UserToken

log = structlog.get_logger(__name__)

# Ended sessions stay a while so "your sessions" pages and audits can still show them.
ENDED_SESSION_RETENTION = dt.timedelta(days=30)


@task(priority=Priority.LOW)
async def purge_expired_sessions(ctx: JobContext[AppState]) -> None:
    """Delete sessions (and their refresh tokens) that ended more than 30 days ago, emailed
    tokens and unconfirmed registrations past their expiry, and forgotten sign-in lockouts.
    Deleting twice is harmless."""
    cutoff = utcnow() - ENDED_SESSION_RETENTION
    async with ctx.state.db.transaction() as session:
        sessions = await session.execute(
            delete(AuthSession).where(
                or_(AuthSession.expires_at < cutoff, AuthSession.revoked_at < cutoff)
            )
        )
        tokens = await session.execute(delete(UserToken).where(UserToken.expires_at < utcnow()))
        registrations = await session.execute(
            delete(PendingRegistration).where(PendingRegistration.expires_at < utcnow())
        )
        lockouts = await session.execute(
            delete(LoginLockout).where(LoginLockout.expires_at < utcnow())
        )
    log.info(
        "expired_sessions_purged",
        sessions=getattr(sessions, "rowcount", None),
        tokens=getattr(tokens, "rowcount", None),
        registrations=getattr(registrations, "rowcount", None),
        lockouts=getattr(lockouts, "rowcount", None),
    )


cron("23 * * * *", purge_expired_sessions)
