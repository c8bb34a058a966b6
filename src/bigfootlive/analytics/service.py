"""Analytics: beacon ingest (validated, rate-limited, buffered), event figures, a streamer's
dashboard and platform statistics."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.analytics import ingest
from bigfootlive.analytics import repository as repo
from bigfootlive.analytics.ports import AnalyticsState
from bigfootlive.analytics.schemas import (
    BeaconBatch,
    ChatFigures,
    ContainerRollup,
    Dashboard,
    EventAnalytics,
    EventTotals,
    HealthPage,
    HealthPoint,
    HealthSample,
    Period,
    PlatformAnalytics,
    PlatformStats,
    QoE,
    TimelinePoint,
    ViewerFigures,
    WatchTime,
)
from bigfootlive.authz.roles import Permission
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.db import utcnow
from bigfootlive.errors import Conflict
from bigfootlive.events import access, lifecycle
from bigfootlive.events import repository as event_repo
from bigfootlive.events.cache import EventRef
from bigfootlive.events.hooks import Transition
from bigfootlive.events.schemas import EventStatus
from bigfootlive.jobs import enqueue_after_commit
from bigfootlive.jobs import service as jobs
from bigfootlive.kit.moment import Moment
from bigfootlive.models import AnalyticsHealthMinute, AnalyticsMinute, Event, EventSummary

# Give the last beacons of an event time to be flushed and rolled up before the summary.
FINALIZE_DELAY_MS = 10_000
# Health minutes in the event's figures; older ones are paged through `health_history`.
HEALTH_MINUTES_IN_SUMMARY = 60
MAX_HEALTH_PAGE = 1440
# A minute's status is its worst verdict.
HEALTH_SEVERITY = {"ok": 0, "unknown": 1, "degraded": 2, "offline": 3}


# The job that tasks.py registers under this name (services never import tasks.py).
FINALIZE_EVENT_TASK = "analytics.tasks.finalize_event"


def viewer_key(subject: AuthSubject | None, viewer_id: str) -> str:
    return f"u:{subject.user_id}" if subject is not None else f"a:{viewer_id}"


# Players send beacons for the same few events over and over: the event's snapshot is kept in
# the process this long (bounded), on top of the shared cache. A visibility or status change
# reaches the beacon path at most this much later (beacons only feed figures).
_REF_MEMO_SECONDS = 1.0
_REF_MEMO = "analytics.event_refs"


async def _event_ref(state: AnalyticsState, event_id: uuid.UUID) -> EventRef:
    memo: Moment[EventRef] = Moment.kept_in(state.db.batches, _REF_MEMO)
    kept = memo.get(event_id)
    if kept is not None:
        return kept
    cache = lifecycle.event_cache(state)
    ref = await cache.ref(event_id)
    if ref is None:  # a session only when the shared cache does not know the event
        async with state.db.sessionmaker() as session:
            event = await event_repo.get_for_visibility_check(session, event_id)
            if event is None:
                raise access.EventNotFound()
            ref = await cache.fill(event)
    return memo.put(event_id, ref, _REF_MEMO_SECONDS)


async def ingest_beacons(
    state: AnalyticsState,
    subject: AuthSubject | None,
    event_id: uuid.UUID,
    batch: BeaconBatch,
    client_ip: str,
) -> int:
    ref = await _event_ref(state, event_id)
    if not access.can_view(subject, ref):
        raise access.EventNotFound()
    if ref.status in (EventStatus.SCHEDULED, EventStatus.CANCELLED):
        raise Conflict("The event is not on air", code="event_not_on_air")
    viewer = viewer_key(subject, batch.viewer_id)
    settings = state.settings
    event = str(event_id)  # the canonical form (one event, one key, however the path spelt it)
    await state.limiter.check_all(  # one round trip for both
        (settings.analytics_beacon_rate_limit, ("beacon", event, viewer)),
        (settings.analytics_beacon_ip_rate_limit, ("beacon-ip", event, client_ip)),
    )
    await state.beacons.add_beacons(event_id, ref.tenant_id, viewer, batch.beacons, utcnow())
    return len(batch.beacons)


async def record_activity(
    state: AnalyticsState, event_id: uuid.UUID, tenant_id: uuid.UUID, kind: str, amount: int = 1
) -> None:
    """For the chat domain: count a chat message ("chat") or a reaction ("reaction")."""
    await state.beacons.add_activity(event_id, tenant_id, kind, utcnow(), amount)


async def record_health(
    state: AnalyticsState,
    *,
    event_id: uuid.UUID,
    tenant_id: uuid.UUID,
    sample: HealthSample,
    at: dt.datetime,
) -> None:
    """Fold one stream-health verdict into its (event, minute) row; for the producers of
    verdicts (the event container's monitor, the streaming domain's health check)."""
    async with state.db.transaction() as session:
        row = await repo.health_minute_for_update(
            session, tenant_id, event_id, ingest.minute_of(at)
        )
        _fold_health(row, sample)


def _fold_health(row: AnalyticsHealthMinute, sample: HealthSample) -> None:
    if row.samples == 0 or HEALTH_SEVERITY[sample.status] > HEALTH_SEVERITY[row.status]:
        row.status = sample.status
    row.samples += 1
    counter = f"{sample.status}_samples"
    setattr(row, counter, getattr(row, counter) + 1)
    row.reasons = sorted(set(row.reasons or ()) | set(sample.reasons))
    if sample.bitrate_kbps is not None:
        row.bitrate_kbps_sum += sample.bitrate_kbps
        row.bitrate_samples += 1
        low = row.bitrate_kbps_min
        row.bitrate_kbps_min = sample.bitrate_kbps if low is None else min(low, sample.bitrate_kbps)
    if sample.fps is not None:
        row.fps_sum += sample.fps
        row.fps_samples += 1
        row.fps_min = sample.fps if row.fps_min is None else min(row.fps_min, sample.fps)
    if sample.width is not None and sample.height is not None:
        row.width, row.height = sample.width, sample.height
    if sample.viewers is not None:
        row.viewers_max = max(row.viewers_max, sample.viewers)


async def record_container_rollup(
    state: AnalyticsState, event_id: uuid.UUID, rollup: dict[str, Any]
) -> None:
    """The event container's roll-up hook (`containers.hooks.CONTAINER_ROLLUP`): add the minutes
    it hands over — each seen once — to the event's per-minute figures: `viewers` keeps the
    larger of the beacons' distinct viewers and the media server's count. (Chat messages are
    counted by the chat domain as they are stored, not again here.)"""
    handed = ContainerRollup.model_validate(rollup)
    rows = [
        {
            "event_id": event_id,
            "tenant_id": handed.tenant_id,
            "minute": ingest.minute_of(m.minute),
            **dict.fromkeys(ingest.MINUTE_FIELDS, 0),
            "viewers": m.viewers,
        }
        for m in handed.minutes
        if m.viewers
    ]
    if rows:
        async with state.db.transaction() as session:
            await repo.add_minutes(session, rows)


def finalize_after_commit(session: AsyncSession, event_id: uuid.UUID) -> None:
    enqueue_after_commit(
        session, FINALIZE_EVENT_TASK, delay_ms=FINALIZE_DELAY_MS, event_id=str(event_id)
    )


async def on_event_transition(change: Transition) -> None:
    """An event that ended after going on air gets its summary (hook EVENT_TRANSITIONED)."""
    ended = EventStatus(change.event.status) == EventStatus.ENDED
    if ended and change.previous != EventStatus.READY:
        finalize_after_commit(change.session, change.event.id)


# ---- reading -------------------------------------------------------------------------------


async def _readable_event(
    session: AsyncSession, subject: AuthSubject, event_id: uuid.UUID
) -> Event:
    """The owner, tenant admins (analytics permission) and managers of the event."""
    event = await access.get_event(session, subject.tenant_id, event_id)
    if subject.can(Permission.ANALYTICS_TENANT) or access.can_manage(subject, event):
        return event
    if access.can_view(subject, event):
        raise access.NotEventManager()
    raise access.EventNotFound()


def _point(row: AnalyticsMinute) -> TimelinePoint:
    return TimelinePoint(
        minute=row.minute,
        viewers=row.viewers,
        views_started=row.views_started,
        watch_seconds=row.watch_ms / 1000,
        chat_messages=row.chat_messages,
        reactions=row.reactions,
        rebuffer_seconds=row.rebuffer_ms / 1000,
        avg_bitrate_kbps=(row.bitrate_kbps_sum / row.bitrate_samples)
        if row.bitrate_samples
        else None,
    )


def _health_point(row: AnalyticsHealthMinute) -> HealthPoint:
    return HealthPoint(
        minute=row.minute,
        status=row.status,  # written from HealthStatus only
        samples=row.samples,
        status_samples={
            "ok": row.ok_samples,
            "degraded": row.degraded_samples,
            "offline": row.offline_samples,
            "unknown": row.unknown_samples,
        },
        reasons=list(row.reasons or ()),
        avg_bitrate_kbps=round(row.bitrate_kbps_sum / row.bitrate_samples, 3)
        if row.bitrate_samples
        else None,
        min_bitrate_kbps=row.bitrate_kbps_min,
        avg_fps=round(row.fps_sum / row.fps_samples, 3) if row.fps_samples else None,
        min_fps=row.fps_min,
        width=row.width,
        height=row.height,
        max_viewers=row.viewers_max,
    )


async def _health_page(
    session: AsyncSession, event: Event, before: dt.datetime | None, limit: int
) -> HealthPage:
    rows = await repo.health_minutes(
        session, event.tenant_id, event.id, before=before, limit=limit + 1
    )
    more = len(rows) > limit
    items = [_health_point(r) for r in reversed(rows[:limit])]
    return HealthPage(items=items, next_before=items[0].minute if more else None)


async def health_history(
    session: AsyncSession,
    subject: AuthSubject,
    event_id: uuid.UUID,
    *,
    before: dt.datetime | None,
    limit: int,
) -> HealthPage:
    """The event's health minutes before `before` (or the latest), a page at a time."""
    event = await _readable_event(session, subject, event_id)
    return await _health_page(session, event, before, min(max(limit, 1), MAX_HEALTH_PAGE))


async def event_analytics(
    state: AnalyticsState, session: AsyncSession, subject: AuthSubject, event_id: uuid.UUID
) -> EventAnalytics:
    event = await _readable_event(session, subject, event_id)
    rows = await repo.minutes(session, event.tenant_id, event.id)
    health = await _health_page(session, event, None, HEALTH_MINUTES_IN_SUMMARY)
    unique, _ = await repo.viewer_totals(session, event.tenant_id, event.id)
    now = utcnow()
    status = EventStatus(event.status)
    on_air = status in (EventStatus.LIVE, EventStatus.RECONNECTING)
    viewers_now = await ingest.viewers_now(state.cache, event.id, now) if on_air else 0
    peak_row = max(rows, key=lambda r: (r.viewers, -r.minute.timestamp()), default=None)
    watch_ms = sum(r.watch_ms for r in rows)
    chat = sum(r.chat_messages for r in rows)
    start = event.went_live_at
    end = event.ended_at or now
    minutes_on_air = max(1.0, (end - start).total_seconds() / 60) if start else 1.0
    startup_samples = sum(r.startup_samples for r in rows)
    bitrate_samples = sum(r.bitrate_samples for r in rows)
    followers = (
        await repo.new_followers(session, event.tenant_id, event.owner_id, start, end)
        if start
        else 0
    )
    return EventAnalytics(
        event_id=event.id,
        title=event.title,
        status=status.value,
        went_live_at=event.went_live_at,
        ended_at=event.ended_at,
        viewers=ViewerFigures(
            now=viewers_now,
            peak=max(peak_row.viewers if peak_row else 0, viewers_now),
            peak_at=peak_row.minute if peak_row and peak_row.viewers else None,
            unique=unique,
        ),
        watch_time=WatchTime(
            total_seconds=watch_ms / 1000,
            average_seconds=(watch_ms / 1000 / unique) if unique else 0.0,
        ),
        chat=ChatFigures(messages=chat, per_minute=round(chat / minutes_on_air, 3)),
        reactions=sum(r.reactions for r in rows),
        new_followers=followers,
        qoe=QoE(
            avg_startup_ms=(sum(r.startup_ms_sum for r in rows) / startup_samples)
            if startup_samples
            else None,
            rebuffer_ratio=(sum(r.rebuffer_ms for r in rows) / watch_ms) if watch_ms else None,
            rebuffer_events=sum(r.rebuffer_events for r in rows),
            avg_bitrate_kbps=(sum(r.bitrate_kbps_sum for r in rows) / bitrate_samples)
            if bitrate_samples
            else None,
        ),
        timeline=[_point(r) for r in rows],
        health=health.items,
    )


CSV_COLUMNS = (
    "minute",
    "viewers",
    "views_started",
    "watch_seconds",
    "chat_messages",
    "reactions",
    "rebuffer_seconds",
    "avg_bitrate_kbps",
)


async def timeline_csv(session: AsyncSession, subject: AuthSubject, event_id: uuid.UUID) -> str:
    event = await _readable_event(session, subject, event_id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in await repo.minutes(session, event.tenant_id, event.id):
        point = _point(row)
        writer.writerow(
            [
                point.minute.isoformat(),
                point.viewers,
                point.views_started,
                f"{point.watch_seconds:.3f}",
                point.chat_messages,
                point.reactions,
                f"{point.rebuffer_seconds:.3f}",
                "" if point.avg_bitrate_kbps is None else f"{point.avg_bitrate_kbps:.1f}",
            ]
        )
    return out.getvalue()


def _totals(rows: list[Any]) -> list[EventTotals]:
    out = []
    for row in rows:
        id_, title, status, created, peak, uniques, watch_ms, chat = row
        out.append(
            EventTotals(
                event_id=id_,
                title=title,
                status=status,
                created_at=created,
                peak_viewers=int(peak),
                unique_viewers=int(uniques),
                watch_seconds=int(watch_ms) / 1000,
                chat_messages=int(chat),
            )
        )
    return out


async def _period(
    session: AsyncSession,
    tenant_id: uuid.UUID | None,
    since: dt.datetime,
    until: dt.datetime,
    owner_id: uuid.UUID | None = None,
) -> Period:
    watch, chat, count, viewers = await repo.period(
        session, tenant_id, since, until, owner_id=owner_id
    )
    return Period(
        watch_seconds=watch / 1000, unique_viewers=viewers, chat_messages=chat, events=count
    )


async def dashboard(session: AsyncSession, subject: AuthSubject) -> Dashboard:
    """The caller's events with their figures, and this week against the week before."""
    now = utcnow()
    week = dt.timedelta(days=7)
    rows = await repo.event_totals(session, subject.tenant_id, owner_id=subject.user_id)
    return Dashboard(
        events=_totals(list(rows)),
        last_7_days=await _period(session, subject.tenant_id, now - week, now, subject.user_id),
        previous_7_days=await _period(
            session, subject.tenant_id, now - 2 * week, now - week, subject.user_id
        ),
    )


async def platform_stats(state: AnalyticsState, session: AsyncSession) -> PlatformStats:
    now = utcnow()
    tenants, users, events_total = await repo.platform_counts(session)
    live = await repo.live_event_ids(session)
    viewers = 0
    for event_id in live:
        viewers += await ingest.viewers_now(state.cache, event_id, now)
    last_minute = ingest.minute_of(now) - dt.timedelta(minutes=1)
    raw = await state.cache.get(ingest.chat_key(last_minute))
    job_stats = await jobs.stats(session, state.jobs)
    return PlatformStats(
        tenants=tenants,
        users=users,
        events_total=events_total,
        live_events=len(live),
        viewers_now=viewers,
        messages_per_second=round((int(raw) if raw else 0) / 60, 3),
        containers=await repo.count_running_containers(session),
        queue_depth=sum(q.queued + q.delayed for q in job_stats.queues.values()),
        dead_jobs=job_stats.dead_letters,
        jobs=job_stats,
    )


async def platform_analytics(state: AnalyticsState, session: AsyncSession) -> PlatformAnalytics:
    now = utcnow()
    return PlatformAnalytics(
        stats=await platform_stats(state, session),
        last_24h=await _period(session, None, now - dt.timedelta(days=1), now),
        last_7_days=await _period(session, None, now - dt.timedelta(days=7), now),
        top_events=_totals(list(await repo.event_totals(session, None, order_by_peak=True))),
    )


async def finalize(state: AnalyticsState, event_id: uuid.UUID) -> None:
    await state.beacons.flush()
    async with state.db.transaction() as session:
        event = await session.get(Event, event_id)
        if event is None:
            return
        rows = await repo.minutes(session, event.tenant_id, event.id)
        unique, _ = await repo.viewer_totals(session, event.tenant_id, event.id)
        peak = max(rows, key=lambda r: r.viewers, default=None)
        await repo.save_summary(
            session,
            EventSummary(
                event_id=event.id,
                tenant_id=event.tenant_id,
                peak_viewers=peak.viewers if peak else 0,
                peak_at=peak.minute if peak else None,
                unique_viewers=unique,
                watch_ms=sum(r.watch_ms for r in rows),
                chat_messages=sum(r.chat_messages for r in rows),
                reactions=sum(r.reactions for r in rows),
                finalized_at=utcnow(),
            ),
        )
