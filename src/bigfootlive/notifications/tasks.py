from __future__ import annotations

import uuid

import structlog

from bigfootlive.composition import AppState
from bigfootlive.jobs import idempotency
from bigfootlive.jobs.registry import JobContext, Priority, task
from bigfootlive.models import User
from bigfootlive.notifications import repository as repo
from bigfootlive.notifications import service
from bigfootlive.notifications.service import FAN_OUT_EVENT_LIVE_TASK
from bigfootlive.notifications.wire import user_channel

log = structlog.get_logger(__name__)


@task(FAN_OUT_EVENT_LIVE_TASK, priority=Priority.HIGH)
async def fan_out_event_live(
    ctx: JobContext[AppState],
    *,
    tenant_id: str,
    owner_id: str,
    event_id: str,
    title: str,
    watch_url: str | None = None,
) -> None:
    """One email job per follower (each idempotent), and a real-time message to each."""
    state = ctx.state
    async with state.db.sessionmaker() as session:
        owner = await session.get(User, uuid.UUID(owner_id))
        audience = await repo.live_audience(session, uuid.UUID(tenant_id), uuid.UUID(owner_id))
    if owner is None:
        return
    for user_id, _email, _name, wants_email, wants_realtime in audience:
        if wants_realtime:
            await state.pubsub.publish(
                user_channel(user_id),
                service.live_message(event_id, owner.display_name, title, watch_url),
            )
        if wants_email:
            await state.jobs.enqueue(
                send_event_live_email,
                tenant_id=tenant_id,
                user_id=str(user_id),
                owner_name=owner.display_name,
                event_id=event_id,
                title=title,
                watch_url=watch_url,
            )


@task(priority=Priority.DEFAULT, min_backoff_ms=5000)
async def send_event_live_email(
    ctx: JobContext[AppState],
    *,
    tenant_id: str,
    user_id: str,
    owner_name: str,
    event_id: str,
    title: str,
    watch_url: str | None = None,
) -> None:
    """At most one email per (event, follower), however often this job is delivered."""
    state = ctx.state
    async with state.db.sessionmaker() as session:
        user = await session.get(User, uuid.UUID(user_id))
        prefs = await repo.get_preferences(session, uuid.UUID(tenant_id), uuid.UUID(user_id))
    if user is None or not user.is_active or (prefs is not None and not prefs.email_event_live):
        return
    key = f"email:event_live:{event_id}:{user_id}"
    if not await idempotency.claim(state.db, key, lease_seconds=120):
        log.info("duplicate_email_skipped", key=key)
        return
    subject, body = service.live_email(
        state,
        name=user.display_name,
        owner=owner_name,
        title=title,
        watch_url=watch_url,
        unsubscribe=service.unsubscribe_url(state, user.tenant_id, user.id),
    )
    try:
        await state.mailer.send(user.email, subject, body)
    except BaseException:
        await idempotency.release(state.db, key)
        raise
    await idempotency.complete(state.db, key)
