"""Simulcast destinations of an event: where its container restreams the ingest while live.

The destination's stream key is encrypted at rest with the project's `SecretBox` (the same as
event stream keys and TOTP seeds), bound to the destination's id, and never returned: the API
shows a masked hint. The event's container (`containers.simulcast`) reads the destinations,
decrypts the keys and writes each destination's state. Knows nothing of HTTP.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.scoping import scoped
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.db import utcnow
from bigfootlive.errors import Conflict, NotFound, Unprocessable
from bigfootlive.events.access import get_managed_event
from bigfootlive.events.lifecycle import illegal
from bigfootlive.events.ports import EventsState
from bigfootlive.events.schemas import EventStatus
from bigfootlive.events.simulcast_schemas import (
    DestinationCreate,
    DestinationOut,
    DestinationState,
    DestinationUpdate,
    Platform,
)
from bigfootlive.kit.crypto import SecretBox
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import Event, SimulcastDestination

# The platforms' primary ingest servers (their documented RTMP/RTMPS endpoints); the stream
# key is appended as the last path segment.
TEMPLATES: dict[Platform, str] = {
    Platform.YOUTUBE: "rtmp://a.rtmp.youtube.com/live2",
    Platform.TWITCH: "rtmp://live.twitch.tv/app",
    Platform.FACEBOOK: "rtmps://live-api-s.facebook.com:443/rtmp",
    Platform.KICK: "rtmps://fa723fc1b171.global-contribute.live-video.net:443/app",
}
SCHEMES = ("rtmp", "rtmps")
_FINISHED = [s.value for s in EventStatus if s.is_finished]


class DestinationNotFound(NotFound):
    code = "destination_not_found"
    message = "No such simulcast destination"


class InvalidDestinationUrl(Unprocessable):
    code = "invalid_destination_url"
    message = "The destination URL must be rtmp:// or rtmps:// with a host"


class DestinationLimit(Conflict):
    code = "simulcast_limit_reached"
    message = "The tenant has reached its limit of simulcast destinations"


def key_hint(key: str) -> str:
    """Enough to recognise a key, never enough to use it."""
    return "…" + key[-4:] if len(key) >= 12 else "…"


def check_url(url: str) -> str:
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidDestinationUrl() from exc
    if parts.scheme.lower() not in SCHEMES or not parts.hostname:
        raise InvalidDestinationUrl(scheme=parts.scheme or None)
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidDestinationUrl(
            "Put the stream key in stream_key, not in the URL (no user, query or fragment)"
        )
    if port == 0 or not _printable(url):
        raise InvalidDestinationUrl()
    return url.rstrip("/")


class InvalidStreamKey(Unprocessable):
    code = "invalid_stream_key"
    message = "The stream key must not contain spaces or control characters"


def check_key(key: str) -> str:
    if not _printable(key):
        raise InvalidStreamKey()
    return key


def _printable(text: str) -> bool:
    return all(c.isprintable() and not c.isspace() for c in text)


def push_url(destination: SimulcastDestination, stream_key: str) -> str:
    return f"{destination.url}/{stream_key}"


def _context(destination_id: uuid.UUID) -> str:
    return f"simulcast-key:{destination_id}"


def _set_key(box: SecretBox, destination: SimulcastDestination, key: str) -> None:
    destination.key_ciphertext = box.encrypt(key, context=_context(destination.id))
    destination.key_hint = key_hint(key)


def stream_key_of(box: SecretBox, destination: SimulcastDestination) -> str:
    """The key in the clear: only for the event's container, which pushes with it."""
    return box.decrypt(destination.key_ciphertext, context=_context(destination.id))


def destination_out(d: SimulcastDestination) -> DestinationOut:
    return DestinationOut(
        id=d.id,
        event_id=d.event_id,
        name=d.name,
        platform=Platform(d.platform),
        url=d.url,
        stream_key_hint=d.key_hint,
        enabled=d.enabled,
        state=DestinationState(d.state),
        state_reason=d.state_reason,
        state_changed_at=d.state_changed_at,
        attempts=d.attempts,
        created_at=d.created_at,
        updated_at=d.updated_at,
    )


# --- queries ------------------------------------------------------------------------------------


async def list_for_event(
    session: AsyncSession, tenant_id: uuid.UUID, event_id: uuid.UUID
) -> Sequence[SimulcastDestination]:
    stmt = (
        scoped(select(SimulcastDestination), SimulcastDestination, tenant_id)
        .where(SimulcastDestination.event_id == event_id)
        .order_by(SimulcastDestination.created_at, SimulcastDestination.id)
    )
    return (await session.execute(stmt)).scalars().all()


async def _get(
    session: AsyncSession, tenant_id: uuid.UUID, event_id: uuid.UUID, destination_id: uuid.UUID
) -> SimulcastDestination:
    stmt = scoped(select(SimulcastDestination), SimulcastDestination, tenant_id).where(
        SimulcastDestination.event_id == event_id, SimulcastDestination.id == destination_id
    )
    found = (await session.execute(stmt)).scalar_one_or_none()
    if found is None:
        raise DestinationNotFound()
    return found


async def _count_for_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> int:
    """Destinations of the tenant's events that have not ended (ended ones hold no slot)."""
    stmt = (
        scoped(select(func.count()).select_from(SimulcastDestination), SimulcastDestination,
               tenant_id)
        .join(Event, Event.id == SimulcastDestination.event_id)
        .where(Event.status.not_in(_FINISHED))
    )  # fmt: skip
    return int((await session.execute(stmt)).scalar_one())


async def set_state(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    destination_id: uuid.UUID,
    state: DestinationState,
    *,
    reason: str | None,
    attempts: int,
    at: dt.datetime,
) -> None:
    """The container's report of one destination (no-op if the row was deleted meanwhile)."""
    await session.execute(
        update(SimulcastDestination)
        .where(
            SimulcastDestination.tenant_id == tenant_id, SimulcastDestination.id == destination_id
        )
        .values(state=state.value, state_reason=reason, attempts=attempts, state_changed_at=at)
        .execution_options(synchronize_session=False)
    )


# --- the API's services -------------------------------------------------------------------------


async def list_destinations(
    session: AsyncSession, subject: AuthSubject, event_id: uuid.UUID
) -> Sequence[SimulcastDestination]:
    event = await get_managed_event(session, subject, event_id)
    return await list_for_event(session, event.tenant_id, event.id)


async def create_destination(
    state: EventsState,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    event_id: uuid.UUID,
    body: DestinationCreate,
) -> SimulcastDestination:
    event = await get_managed_event(session, subject, event_id)
    if EventStatus(event.status).is_finished:
        raise illegal("add_simulcast", EventStatus(event.status))
    if body.url is None and body.platform == Platform.CUSTOM:
        raise InvalidDestinationUrl("A custom destination needs its rtmp:// or rtmps:// URL")
    url = check_url(body.url or TEMPLATES[body.platform])
    limit = state.settings.simulcast_max_destinations
    if await _count_for_tenant(session, event.tenant_id) >= limit:
        raise DestinationLimit(limit=limit)
    destination = SimulcastDestination(
        id=uuid.uuid4(),
        tenant_id=event.tenant_id,
        event_id=event.id,
        name=body.name or body.platform.value,
        platform=body.platform.value,
        url=url,
        enabled=body.enabled,
        state=DestinationState.IDLE.value,
        attempts=0,
    )
    _set_key(state.secrets, destination, check_key(body.stream_key))
    session.add(destination)
    await session.flush()
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.SIMULCAST_CREATE,
        tenant_id=event.tenant_id,
        target_type="simulcast_destination",
        target_id=str(destination.id),
        details={"event_id": str(event.id), "platform": destination.platform},
    )
    return destination


async def update_destination(
    state: EventsState,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    event_id: uuid.UUID,
    destination_id: uuid.UUID,
    body: DestinationUpdate,
) -> SimulcastDestination:
    event = await get_managed_event(session, subject, event_id)
    destination = await _get(session, event.tenant_id, event.id, destination_id)
    if body.url is not None:
        destination.url = check_url(body.url)
    if body.name is not None:
        destination.name = body.name
    if body.stream_key is not None:
        _set_key(state.secrets, destination, check_key(body.stream_key))
    if body.enabled is not None:
        destination.enabled = body.enabled
    destination.updated_at = utcnow()
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.SIMULCAST_UPDATE,
        tenant_id=event.tenant_id,
        target_type="simulcast_destination",
        target_id=str(destination.id),
        details={"fields": sorted(body.model_dump(exclude_none=True, exclude={"stream_key"}))
                 + (["stream_key"] if body.stream_key is not None else [])},
    )  # fmt: skip
    return destination


async def delete_destination(
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    event_id: uuid.UUID,
    destination_id: uuid.UUID,
) -> None:
    event = await get_managed_event(session, subject, event_id)
    destination = await _get(session, event.tenant_id, event.id, destination_id)
    await session.delete(destination)
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.SIMULCAST_DELETE,
        tenant_id=event.tenant_id,
        target_type="simulcast_destination",
        target_id=str(destination.id),
        details={"event_id": str(event.id)},
    )
