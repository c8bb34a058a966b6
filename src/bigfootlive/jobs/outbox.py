"""Transactional outbox: a job is a row written in the same transaction as the change that
wants it, so a committed change always has its job, and a rolled-back one has none.

- `add` (behind `enqueue_after_commit`) writes a `job_outbox` row in the caller's session and,
  once that session commits, sends the job and deletes the row.
- `OutboxRelay` sends the rows that are still there `JOBS_OUTBOX_RELAY_AFTER_SECONDS` later:
  the process died between the commit and the send, or the broker refused it. A relay claims
  rows by a conditional UPDATE (claim token + lease), so two relays never send the same row at
  the same time; a relay that dies after sending but before deleting leaves the row to be sent
  again once its lease runs out. That is at-least-once, like the broker itself: every job
  carries the message id chosen when its row was written, and tasks are idempotent. A send
  that failed is tried again after a back-off (`OutboxRelay.backoff`: doubling from
  RELAY_AFTER, at most the lease).
- A row the relay has failed to send `JOBS_OUTBOX_MAX_ATTEMPTS` times (a task no longer
  registered, a broker that keeps refusing it) goes to the dead letters, where failed jobs go
  (`jobs.dead.add_dead_job`; admins list, retry or discard them), and leaves the outbox in the
  same transaction.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import traceback
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bigfootlive.db import Database, after_commit, utcnow
from bigfootlive.jobs.dead import add_dead_job
from bigfootlive.jobs.queue import JobQueue
from bigfootlive.jobs.registry import TASKS, Task
from bigfootlive.kit.periodic import Periodic
from bigfootlive.models import JobOutbox

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Pending:
    id: uuid.UUID
    message_id: str
    task: str
    kwargs: dict[str, Any]
    delay_ms: int | None


def add(
    session: AsyncSession, target: Task | str, *, delay_ms: int | None, kwargs: dict[str, Any]
) -> str:
    """Write the job into the session's transaction; send it once that commits. Returns the
    message id the job will carry (also on a relayed send)."""
    queue: JobQueue = session.info["job_queue"]
    name = target if isinstance(target, str) else target.name
    if name not in queue.actors:  # a misspelt name fails at the call, not in the relay
        raise LookupError(f"no task is registered as {name!r}")
    now = utcnow()
    pending = _Pending(
        id=uuid.uuid4(),
        message_id=str(uuid.uuid4()),
        task=name,
        kwargs=dict(kwargs),
        delay_ms=delay_ms,
    )
    session.add(
        JobOutbox(
            id=pending.id,
            message_id=pending.message_id,
            task=pending.task,
            kwargs=pending.kwargs,
            due_at=now + dt.timedelta(milliseconds=delay_ms) if delay_ms else None,
            created_at=now,
            attempts=0,
        )
    )
    batch: list[_Pending] | None = session.info.get("job_outbox")
    if batch is None:
        batch = session.info["job_outbox"] = []
        bind = session.bind

        async def send_batch() -> None:
            items = session.info.pop("job_outbox", batch)
            await _send_committed(queue, bind if isinstance(bind, AsyncEngine) else None, items)

        after_commit(session, send_batch)
    batch.append(pending)
    return pending.message_id


async def _send_committed(
    queue: JobQueue, engine: AsyncEngine | None, items: list[_Pending]
) -> None:
    sent: list[uuid.UUID] = []
    for item in items:
        try:
            await queue.enqueue(
                item.task, delay_ms=item.delay_ms, message_id=item.message_id, **item.kwargs
            )
        except Exception:
            # The row stays; the relay sends it.
            log.warning("outbox_send_failed", task=item.task, exc_info=True)
            continue
        sent.append(item.id)
    if sent and engine is not None:
        _sent_rows(engine).add(sent)


class _SentRows:
    """Outbox rows of jobs already sent, deleted together: at most one DELETE in flight per
    engine, and the rows sent while it runs go into the next one. Idle, a row goes at once;
    under load, one statement removes the rows of many requests instead of a transaction per
    request. A row whose DELETE never ran (the process stopped first, the database failed) is
    sent again by the relay, with the same message id: at-least-once, as before."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.ids: list[uuid.UUID] = []
        self.task: asyncio.Task[None] | None = None

    def add(self, ids: list[uuid.UUID]) -> None:
        self.ids.extend(ids)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._drain(), name="job-outbox-delete")

    async def _drain(self) -> None:
        while self.ids:
            ids, self.ids = self.ids[:_DELETE_BATCH], self.ids[_DELETE_BATCH:]
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(delete(JobOutbox).where(JobOutbox.id.in_(ids)))
            except Exception:
                # Sent but not deleted: the relay sends it again (same message id).
                log.warning("outbox_delete_failed", count=len(ids), exc_info=True)

    async def wait(self) -> None:
        while self.task is not None and not self.task.done():
            await asyncio.shield(self.task)


_DELETE_BATCH = 500
_SENT: weakref.WeakKeyDictionary[AsyncEngine, _SentRows] = weakref.WeakKeyDictionary()


def _sent_rows(engine: AsyncEngine) -> _SentRows:
    rows = _SENT.get(engine)
    if rows is None or (rows.task is not None and rows.task.get_loop() is not _running_loop()):
        rows = _SENT[engine] = _SentRows(engine)
    return rows


def _running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


async def deleted_sent_rows(engine: AsyncEngine) -> None:
    """Wait until the rows of the jobs sent so far are deleted (before the engine closes)."""
    rows = _SENT.get(engine)
    if rows is not None and rows.task is not None and rows.task.get_loop() is _running_loop():
        await rows.wait()


class OutboxRelay:
    """Sends outbox rows that were committed but not sent (see the module docstring)."""

    def __init__(
        self,
        queue: JobQueue,
        db: Database,
        *,
        after_seconds: float,
        interval_seconds: float,
        lease_seconds: float = 60.0,
        batch: int = 100,
        max_attempts: int = 10,
    ) -> None:
        self.queue = queue
        self.max_attempts = max_attempts
        self.db = db
        self.after = dt.timedelta(seconds=after_seconds)
        self.interval_seconds = interval_seconds
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.batch = batch
        self.relayed = 0
        self._loop = Periodic("job-outbox-relay", self.relay_backlog, interval_seconds)

    async def _claim(self, now: dt.datetime) -> tuple[str, list[JobOutbox]]:
        token = uuid.uuid4().hex
        free = or_(JobOutbox.claimed_until.is_(None), JobOutbox.claimed_until < now)
        candidates = (
            select(JobOutbox.id)
            .where(JobOutbox.created_at <= now - self.after, free)
            .order_by(JobOutbox.created_at)
            .limit(self.batch)
        )
        async with self.db.transaction() as session:
            # `free` is repeated on the UPDATE itself: a concurrent relay that claimed a row
            # first makes it fail there (PostgreSQL re-checks it on the locked row).
            await session.execute(
                update(JobOutbox)
                .where(JobOutbox.id.in_(candidates.scalar_subquery()), free)
                .values(
                    claimed_by=token,
                    claimed_until=now + self.lease,
                    attempts=JobOutbox.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            rows = (
                (await session.execute(select(JobOutbox).where(JobOutbox.claimed_by == token)))
                .scalars()
                .all()
            )
        return token, list(rows)

    async def relay_once(self) -> int:
        """Send every row old enough and not claimed by another relay; returns how many."""
        now = utcnow()
        token, rows = await self._claim(now)
        if not rows:
            return 0
        sent: list[uuid.UUID] = []
        failed: dict[uuid.UUID, tuple[JobOutbox, str, str]] = {}
        for row in rows:
            delay_ms = None
            if row.due_at is not None:
                delay_ms = max(0, int((row.due_at - utcnow()).total_seconds() * 1000)) or None
            try:
                await self.queue.enqueue(
                    row.task, delay_ms=delay_ms, message_id=row.message_id, **row.kwargs
                )
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"[:1000]
                failed[row.id] = (row, error, traceback.format_exc())
                log.warning("outbox_relay_send_failed", task=row.task, exc_info=True)
                continue
            sent.append(row.id)
            log.info("outbox_relayed", task=row.task, message_id=row.message_id)
        async with self.db.transaction() as session:
            if sent:
                await session.execute(
                    delete(JobOutbox).where(JobOutbox.id.in_(sent), JobOutbox.claimed_by == token)
                )
            for row, error, trace in failed.values():
                if row.attempts >= self.max_attempts:
                    await self._bury(session, token, row, error, trace)
                else:  # retried after a back-off, not a whole lease: the broker may be back
                    await session.execute(
                        update(JobOutbox)
                        .where(JobOutbox.id == row.id, JobOutbox.claimed_by == token)
                        .values(last_error=error, claimed_until=utcnow() + self.backoff(row))
                    )
        self.relayed += len(sent)
        return len(sent)

    def backoff(self, row: JobOutbox) -> dt.timedelta:
        """How long a row whose send failed waits for its next attempt: RELAY_AFTER doubled
        at each attempt, at most the lease (with the defaults 5, 10, 20, 40 s, then 60 s: a
        broker back after an outage gets the jobs within seconds, not a lease later, and the
        10 attempts span about 6 minutes before a row goes to the dead letters)."""
        doubling = float(2 ** max(0, row.attempts - 1))
        return min(self.lease, self.after * doubling)

    async def _bury(
        self, session: AsyncSession, token: str, row: JobOutbox, error: str, trace: str
    ) -> None:
        """Move a row that failed its last attempt to the dead letters."""
        removed = (
            await session.execute(
                delete(JobOutbox)
                .where(JobOutbox.id == row.id, JobOutbox.claimed_by == token)
                .returning(JobOutbox.id)
            )
        ).scalar_one_or_none()
        if removed is None:
            return  # our lease ran out and another relay has the row now
        spec = TASKS.get(row.task)
        await add_dead_job(
            session,
            message_id=row.message_id,
            queue=self.queue.queue_name(spec.priority) if spec else "-",
            task=row.task,
            kwargs=row.kwargs,
            attempts=row.attempts,
            error=f"not sent from the job outbox after {row.attempts} attempts: {error}"[:1000],
            trace=trace,
        )
        log.error(
            "outbox_row_dead", task=row.task, message_id=row.message_id, attempts=row.attempts
        )

    async def relay_backlog(self) -> None:
        while await self.relay_once() >= self.batch:
            pass  # a backlog: keep going

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()


def make_relay(queue: JobQueue, db: Database) -> OutboxRelay:
    settings = queue.settings
    return OutboxRelay(
        queue,
        db,
        after_seconds=settings.jobs_outbox_relay_after_seconds,
        interval_seconds=settings.jobs_outbox_relay_interval_seconds,
        max_attempts=settings.jobs_outbox_max_attempts,
    )


def enqueue_after_commit(
    session: AsyncSession, target: Task | str, *, delay_ms: int | None = None, **kwargs: Any
) -> str:
    """Write the job into the session's transaction (`job_outbox`) and send it once that
    commits: a rolled-back transaction sends nothing, and a crash after the commit leaves the
    row for the outbox relay. Returns the job's message id."""
    return add(session, target, delay_ms=delay_ms, kwargs=kwargs)
