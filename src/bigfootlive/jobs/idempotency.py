"""Idempotency keys: with at-least-once delivery a job may run twice; its effect must not.

Two ways, by the kind of effect:
- database effects: `first_time(session, key)` in the same transaction as the effect, so the key
  and the effect commit (or roll back) together;
- outside effects (email, HTTP): `claim` before, `complete` after. A claim left by a crashed
  worker is taken over once its lease has run out; a live claim makes the duplicate retry later.
"""

from __future__ import annotations

import datetime as dt

from dramatiq.errors import Retry
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.db import Database, utcnow
from bigfootlive.models import JobKey


async def first_time(session: AsyncSession, key: str) -> bool:
    """Record `key` in this transaction; False when it was already recorded."""
    if await session.get(JobKey, key) is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(JobKey(key=key, status="done", done_at=utcnow()))
    except IntegrityError:
        return False
    return True


async def claim(db: Database, key: str, *, lease_seconds: float = 300) -> bool:
    """True: go ahead (then `complete` or `release`). False: already done. Raises Retry when
    another worker holds a live claim."""
    now = utcnow()
    try:
        async with db.transaction() as session:
            row = await session.get(JobKey, key, with_for_update=True)
            if row is None:
                session.add(JobKey(key=key, status="claimed", claimed_at=now))
                return True
            if row.status == "done":
                return False
            if row.claimed_at > now - dt.timedelta(seconds=lease_seconds):
                raise Retry(delay=int(lease_seconds * 1000))
            row.claimed_at = now
            return True
    except IntegrityError as exc:  # a concurrent duplicate claimed it first
        raise Retry(delay=int(lease_seconds * 1000)) from exc


async def complete(db: Database, key: str) -> None:
    async with db.transaction() as session:
        row = await session.get(JobKey, key)
        if row is None:
            session.add(JobKey(key=key, status="done", done_at=utcnow()))
        else:
            row.status, row.done_at = "done", utcnow()


async def release(db: Database, key: str) -> None:
    """Give a claim back after a failed attempt so the retry can take it at once."""
    async with db.transaction() as session:
        await session.execute(delete(JobKey).where(JobKey.key == key, JobKey.status == "claimed"))


async def is_done(session: AsyncSession, key: str) -> bool:
    row = (await session.execute(select(JobKey.status).where(JobKey.key == key))).scalar()
    return row == "done"


async def purge(session: AsyncSession, older_than: dt.datetime) -> int:
    result = await session.execute(
        delete(JobKey).where(JobKey.status == "done", JobKey.done_at < older_than)
    )
    return int(getattr(result, "rowcount", 0) or 0)
