"""Who may see and who may manage an event, and fetching an event on those terms.
Knows nothing of HTTP."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.authz.roles import Permission, Role
from bigfootlive.authz.scoping import act_for_tenant
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.errors import Forbidden, NotFound
from bigfootlive.events import repository as repo
from bigfootlive.events.cache import EventRef
from bigfootlive.events.playback import PlaybackClaims
from bigfootlive.events.schemas import Visibility
from bigfootlive.models import Event


class EventNotFound(NotFound):
    code = "event_not_found"
    message = "No such event"


class NotEventManager(Forbidden):
    code = "not_event_manager"
    message = "Only the event's owner or a tenant admin can do this"


def can_view(
    viewer: AuthSubject | None, event: Event | EventRef, playback: PlaybackClaims | None = None
) -> bool:
    """public: anyone, anonymous included. tenant: members of the event's tenant. private: the
    owner, the tenant's moderators and admins. Any: a valid playback token for this event."""
    visibility = Visibility(event.visibility)
    if visibility == Visibility.PUBLIC:
        return True
    if playback is not None and playback.event_id == event.id:
        return True
    if viewer is None:
        return False
    if viewer.is_platform_admin:
        return True
    if viewer.tenant_id != event.tenant_id:
        return False
    if visibility == Visibility.TENANT:
        return True
    return viewer.user_id == event.owner_id or viewer.role >= Role.MODERATOR


def can_manage(subject: AuthSubject, event: Event | EventRef) -> bool:
    """The owner (while still allowed to stream) and the tenant's admins."""
    if subject.tenant_id != event.tenant_id:
        return False
    if subject.can(Permission.EVENTS_MANAGE_ANY):
        return True
    return subject.user_id == event.owner_id and subject.can(Permission.EVENTS_CREATE)


async def get_event(session: AsyncSession, tenant_id: uuid.UUID, event_id: uuid.UUID) -> Event:
    event = await repo.get(session, tenant_id, event_id)
    if event is None:
        raise EventNotFound()
    return event


async def get_viewable_event(
    session: AsyncSession,
    viewer: AuthSubject | None,
    event_id: uuid.UUID,
    *,
    playback: PlaybackClaims | None = None,
) -> Event:
    """The event if `viewer` (None = anonymous) may watch it, else 404 (existence not leaked).
    `playback` is an already verified playback token (`state.playback_tokens.verify`)."""
    event = await repo.get_for_visibility_check(session, event_id)
    if event is None or not can_view(viewer, event, playback):
        raise EventNotFound()
    # Whoever may watch the event (a public one, from any tenant or none) acts for its tenant
    # for the rest of the request: its chat, presence and figures are that tenant's rows.
    act_for_tenant(event.tenant_id)
    return event


async def visibility_of(session: AsyncSession, event_id: uuid.UUID) -> Visibility | None:
    """Whether the event exists and how visible it is, for refusals that must tell "sign in"
    apart from "no such event" (the WebSocket gateway). Nothing else about it is returned."""
    event = await repo.get_for_visibility_check(session, event_id)
    return None if event is None else Visibility(event.visibility)


async def get_managed_event(
    session: AsyncSession, subject: AuthSubject, event_id: uuid.UUID
) -> Event:
    """404 outside the subject's tenant or when it may not even see the event; 403 when it may
    see but not manage it."""
    event = await get_event(session, subject.tenant_id, event_id)
    if not can_manage(subject, event):
        if not can_view(subject, event):
            raise EventNotFound()
        raise NotEventManager()
    return event
