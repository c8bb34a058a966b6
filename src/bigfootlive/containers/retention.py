"""HLS retention: an ended event's live HLS output is deleted `HLS_RETENTION_HOURS` after the
end (0 keeps it). What goes:

- the transcoder's tree: `live/<playback id>/` in the storage (local dir or S3 bucket) and, for
  S3, its local scratch copy `RECORDINGS_DIR/work/<event id>/`;
- the media server's own HLS for the event, when `NGINX_RTMP_HLS_PATH` names nginx-rtmp's
  `hls_path` on a volume this host sees: `<playback id>.m3u8`, `<playback id>-N.ts` and the
  `<playback id>/` directory of `hls_nested on`.

Never deleted: the VOD asset under `vod/<event id>/` (a published recording), and the live tree
of a recorded event whose recording was not published (it would be the only copy).

Each ended event gets a delayed `purge_event_hls` job (sent through the outbox with the end), and
an hourly sweep catches the rest (a job lost with a broker, a retention changed since, events
ended before this existed). Deleting what is already gone is a no-op, so both may run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.config import Settings
from bigfootlive.containers import repository as repo
from bigfootlive.containers.storage import Storage, make_storage, remove_tree
from bigfootlive.db import utcnow
from bigfootlive.events.hooks import Transition
from bigfootlive.events.schemas import EventStatus
from bigfootlive.jobs import enqueue_after_commit
from bigfootlive.models import Event
from bigfootlive.streaming.ports import StreamingState

log = structlog.get_logger(__name__)

SWEEP_LOOKBACK = dt.timedelta(days=7)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


# The job that tasks.py registers under this name (services never import tasks.py).
PURGE_EVENT_HLS_TASK = "containers.tasks.purge_event_hls"


def retention(settings: Settings) -> dt.timedelta | None:
    hours = settings.hls_retention_hours
    return dt.timedelta(hours=hours) if hours > 0 else None


def schedule_after_commit(settings: Settings, session: AsyncSession, event: Event) -> None:
    """Called in the transaction that ends `event`: its HLS goes once the retention is over."""
    keep_for = retention(settings)
    if keep_for is None:
        return
    enqueue_after_commit(
        session,
        PURGE_EVENT_HLS_TASK,
        delay_ms=int(keep_for.total_seconds() * 1000),
        event_id=str(event.id),
    )


async def on_event_transition(change: Transition) -> None:
    """An ended event's HLS goes once the retention is over (hook EVENT_TRANSITIONED)."""
    if EventStatus(change.event.status) == EventStatus.ENDED:
        schedule_after_commit(change.state.settings, change.session, change.event)


async def purge_event(
    state: StreamingState, event_id: uuid.UUID, *, storage: Storage | None = None
) -> int:
    """Delete the event's live HLS if its retention is over; returns the files deleted."""
    keep_for = retention(state.settings)
    if keep_for is None:
        return 0
    async with state.db.transaction() as session:
        event = await repo.get_event_unscoped(session, event_id)
        if event is None or event.ended_at is None:
            return 0
        due = event.ended_at + keep_for
        unpublished = event.recording and not await repo.recordings_of(
            session, event.tenant_id, event.id
        )
    early = due - utcnow()
    if early > dt.timedelta(0):
        # A delayed job may fire a little early, and the retention may have grown since it
        # was scheduled: come back when it is due.
        delay_ms = int(early.total_seconds() * 1000) + 1
        await state.jobs.enqueue(PURGE_EVENT_HLS_TASK, delay_ms=delay_ms, event_id=str(event_id))
        return 0
    return await _purge(state.settings, event, storage, keep_unpublished=unpublished)


async def sweep(state: StreamingState, *, storage: Storage | None = None) -> int:
    """Purge every event whose retention ended within the last week; returns files deleted."""
    keep_for = retention(state.settings)
    if keep_for is None:
        return 0
    end = utcnow() - keep_for
    start = end - SWEEP_LOOKBACK
    storage = storage or make_storage(state.settings)
    deleted = 0
    while True:
        async with state.db.transaction() as session:
            events = await repo.events_ended_between(session, start, end)
        for event in events:
            deleted += await purge_event(state, event.id, storage=storage)
        if len(events) < 500 or events[-1].ended_at is None:
            return deleted
        start = events[-1].ended_at + dt.timedelta(microseconds=1)


async def _purge(
    settings: Settings, event: Event, storage: Storage | None, *, keep_unpublished: bool
) -> int:
    playback_id = event.playback_id
    if not _SAFE_NAME.match(playback_id):
        log.warning("hls_retention_bad_playback_id", event_id=str(event.id))
        return 0
    deleted = 0
    if keep_unpublished:
        log.warning("hls_retention_kept_unpublished_recording", event_id=str(event.id))
    else:
        storage = storage or make_storage(settings)
        deleted += await storage.delete_prefix(f"live/{playback_id}")
        scratch = Path(settings.recordings_dir) / "work" / str(event.id)
        deleted += await asyncio.to_thread(remove_tree, scratch)
    if settings.nginx_rtmp_hls_path:
        deleted += await asyncio.to_thread(
            _remove_nginx_hls, Path(settings.nginx_rtmp_hls_path), playback_id
        )
    if deleted:
        log.info("hls_retention_purged", event_id=str(event.id), files=deleted)
    return deleted


def _remove_nginx_hls(root: Path, name: str) -> int:
    """nginx-rtmp names HLS files by the stream name: `<name>.m3u8` and `<name>-<n>.ts`
    (`hls_nested off`), or `<name>/index.m3u8` and `<name>/<n>.ts` (`hls_nested on`)."""
    if not root.is_dir():
        return 0
    deleted = remove_tree(root / name)
    for path in [root / f"{name}.m3u8", *root.glob(f"{name}-*.ts")]:
        try:
            path.unlink()
            deleted += 1
        except FileNotFoundError:
            pass
    return deleted
