"""A named lease in the database: one holder at a time, until it stops renewing.

Works the same on PostgreSQL and SQLite: acquiring or renewing is one conditional UPDATE
(`holder = me OR expires_at < now`), and the very first acquisition an INSERT that only one
contender can win (primary key). Clocks of the API processes are assumed roughly in sync (the
TTL, seconds, is far above NTP skew).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import structlog
from sqlalchemy import delete, or_, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from bigfootlive.db import Database, utcnow
from bigfootlive.models import Lease

log = structlog.get_logger(__name__)


class DatabaseLease:
    def __init__(
        self,
        db: Database,
        name: str,
        holder: str,
        ttl_seconds: float,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.db = db
        self.clock = clock  # "now" (tests move it by hand instead of waiting for the TTL)
        self.name = name
        self.holder = holder
        self.ttl = dt.timedelta(seconds=ttl_seconds)
        self.held = False

    async def acquire(self) -> bool:
        """Take or renew the lease; True while this holder has it. A holder that cannot reach
        the database (down, or SQLite busy beyond its timeout) cannot show that it still holds
        the lease: False for this round, and the next round tries again."""
        try:
            return await self._acquire()
        except (DBAPIError, OSError) as exc:  # OSError: refused before any DBAPI call
            log.warning("lease_unreachable", lease=self.name, error=type(exc).__name__)
            self.held = False
            return False

    async def _acquire(self) -> bool:
        now = self.clock()
        async with self.db.transaction() as session:
            result = await session.execute(
                update(Lease)
                .where(
                    Lease.name == self.name,
                    or_(Lease.holder == self.holder, Lease.expires_at < now),
                )
                .values(holder=self.holder, expires_at=now + self.ttl)
                .execution_options(synchronize_session=False)
            )
            taken = bool(getattr(result, "rowcount", 0))
        if not taken:
            try:
                async with self.db.transaction() as session:
                    session.add(
                        Lease(name=self.name, holder=self.holder, expires_at=now + self.ttl)
                    )
                taken = True
            except IntegrityError:
                taken = False
        self.held = taken
        return taken

    async def release(self) -> None:
        if not self.held:
            return
        async with self.db.transaction() as session:
            await session.execute(
                delete(Lease).where(Lease.name == self.name, Lease.holder == self.holder)
            )
        self.held = False
