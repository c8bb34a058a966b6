"""Notifications: followers hear when a streamer goes live (email + a real-time message), within
their preferences; every email carries a signed one-click unsubscribe link."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.authz.scoping import act_for_tenant
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.errors import BadRequest
from bigfootlive.jobs import enqueue_after_commit
from bigfootlive.kit.crypto import constant_time_equals, keyed_hash
from bigfootlive.models import NotificationPreference
from bigfootlive.notifications import repository as repo
from bigfootlive.notifications.schemas import Preferences, PreferencesUpdate, Unsubscribed
from bigfootlive.notifications.wire import Notification
from bigfootlive.state import Infrastructure

KIND_EVENT_LIVE = "event_live"
KINDS = (KIND_EVENT_LIVE, "all")


# ---- preferences -----------------------------------------------------------------------------


# The job that tasks.py registers under this name (services never import tasks.py).
FAN_OUT_EVENT_LIVE_TASK = "notifications.tasks.fan_out_event_live"


async def preferences(session: AsyncSession, subject: AuthSubject) -> Preferences:
    row = await repo.get_preferences(session, subject.tenant_id, subject.user_id)
    if row is None:
        return Preferences()
    return Preferences(
        email_event_live=row.email_event_live, realtime_event_live=row.realtime_event_live
    )


async def _row(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> NotificationPreference:
    row = await repo.get_preferences(session, tenant_id, user_id)
    if row is None:
        row = NotificationPreference(user_id=user_id, tenant_id=tenant_id)
        row.email_event_live = row.realtime_event_live = True
        session.add(row)
    return row


async def update_preferences(
    session: AsyncSession, subject: AuthSubject, body: PreferencesUpdate
) -> Preferences:
    row = await _row(session, subject.tenant_id, subject.user_id)
    for field, value in body.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(row, field, value)
    await session.flush()
    return Preferences(
        email_event_live=row.email_event_live, realtime_event_live=row.realtime_event_live
    )


# ---- unsubscribe links -----------------------------------------------------------------------


def _signature(
    state: Infrastructure, tenant_id: str, user_id: str, kind: str, key_index: int = 0
) -> str:
    key = state.settings.data_keys[key_index]
    return keyed_hash(key, f"unsubscribe:{tenant_id}:{user_id}:{kind}")[:32]


def unsubscribe_token(
    state: Infrastructure, tenant_id: uuid.UUID, user_id: uuid.UUID, kind: str = KIND_EVENT_LIVE
) -> str:
    return f"{tenant_id}.{user_id}.{kind}.{_signature(state, str(tenant_id), str(user_id), kind)}"


def unsubscribe_url(state: Infrastructure, tenant_id: uuid.UUID, user_id: uuid.UUID) -> str:
    token = unsubscribe_token(state, tenant_id, user_id)
    return f"{state.settings.public_base_url}/api/notifications/unsubscribe?token={token}"


def check_unsubscribe_token(state: Infrastructure, token: str) -> tuple[uuid.UUID, uuid.UUID, str]:
    try:
        tenant_raw, user_raw, kind, signature = token.split(".")
        tenant_id, user_id = uuid.UUID(tenant_raw), uuid.UUID(user_raw)
    except ValueError as exc:
        raise BadRequest("The unsubscribe link is not valid", code="invalid_token") from exc
    # any data key still configured: links mailed before a key rotation keep working
    candidates = [
        _signature(state, str(tenant_id), str(user_id), kind, index)
        for index in range(len(state.settings.data_keys))
    ]
    if kind not in KINDS or not any(constant_time_equals(signature, c) for c in candidates):
        raise BadRequest("The unsubscribe link is not valid", code="invalid_token")
    return tenant_id, user_id, kind


async def unsubscribe(state: Infrastructure, session: AsyncSession, token: str) -> Unsubscribed:
    """Works without signing in (the link is the credential); doing it twice is harmless."""
    tenant_id, user_id, kind = check_unsubscribe_token(state, token)
    act_for_tenant(tenant_id)  # the signed link names its tenant
    row = await _row(session, tenant_id, user_id)
    row.email_event_live = False
    if kind == "all":
        row.realtime_event_live = False
    await session.flush()
    return Unsubscribed(unsubscribed=True, kind=kind)


# ---- going live ------------------------------------------------------------------------------


def notify_followers_live(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    owner_id: uuid.UUID,
    event_id: uuid.UUID,
    title: str,
    watch_url: str | None = None,
) -> None:
    """Call from the go-live transaction; the fan-out job starts after it commits."""
    enqueue_after_commit(
        session,
        FAN_OUT_EVENT_LIVE_TASK,
        tenant_id=str(tenant_id),
        owner_id=str(owner_id),
        event_id=str(event_id),
        title=title,
        watch_url=watch_url,
    )


def live_message(event_id: str, owner_name: str, title: str, watch_url: str | None) -> bytes:
    """The real-time message for `notifications.wire.user_channel(follower)`."""
    message = Notification(
        kind="event.live",
        event_id=uuid.UUID(event_id),
        owner=owner_name,
        title=title,
        watch_url=watch_url,
    )
    return message.model_dump_json().encode()


def live_email(
    state: Infrastructure,
    *,
    name: str,
    owner: str,
    title: str,
    watch_url: str | None,
    unsubscribe: str,
) -> tuple[str, str]:
    subject = f"{owner} is live: {title}"
    body = (
        f"Hi {name},\n\n{owner} just went live: {title}\n"
        + (f"Watch now: {watch_url}\n" if watch_url else "")
        + f"\nDon't want these emails? Unsubscribe: {unsubscribe}\n"
    )
    return subject, body
