"""The events domain's hooks: how other domains react to an event's life (wired in the
composition root; the events domain imports none of them)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.events.ports import EventsState
from bigfootlive.events.schemas import EventStatus
from bigfootlive.kit.hooks import Hook
from bigfootlive.models import Event


@dataclass(frozen=True, slots=True)
class Starting:
    """An event is about to be armed (inside the start request); a handler refuses by raising
    a BigfootError (the containers domain: no compute capacity left)."""

    state: EventsState
    session: AsyncSession
    event: Event


@dataclass(frozen=True, slots=True)
class Transition:
    """An event changed status, inside the transaction that changed it: handlers add their
    after-commit work (jobs through the outbox) to `session`."""

    state: EventsState
    session: AsyncSession
    event: Event
    previous: EventStatus


@dataclass(frozen=True, slots=True)
class Stopped:
    """An on-air event was stopped; each handler runs after the stop has committed (the
    streaming domain: kick the publisher off the media server)."""

    state: EventsState
    event_id: uuid.UUID
    playback_id: str
    publisher_id: str | None


EVENT_STARTING: Hook[Starting] = Hook("events.starting")
EVENT_TRANSITIONED: Hook[Transition] = Hook("events.transitioned")
EVENT_STOPPED: Hook[Stopped] = Hook("events.stopped")
