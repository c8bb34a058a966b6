"""What the streamer learns when a publish is refused: the last refusal of each event (reason,
time, the encoder's address), kept in the cache for `REFUSAL_TTL` and shown to the event's
managers in the stream endpoint, and pushed at once to the owner's real-time sockets as a
`system` message of kind `publish_refused` (`streaming.wire.PublishRefused`)."""

from __future__ import annotations

import uuid

import structlog

from bigfootlive.db import utcnow
from bigfootlive.events.cache import EventRef
from bigfootlive.kit import jsonparse
from bigfootlive.notifications.wire import user_channel
from bigfootlive.streaming.ports import StreamingState
from bigfootlive.streaming.schemas import RefusedPublish
from bigfootlive.streaming.wire import PublishRefused

log = structlog.get_logger(__name__)

REFUSAL_TTL = 7 * 24 * 3600.0

_TEXTS = {
    "event_not_started": "Publish refused: the event has not been started yet",
    "event_finished": "Publish refused: the event has ended",
    "publisher_already_connected": "Publish refused: another encoder is already live",
    "unknown_stream": "Publish refused: the stream key does not belong to this event",
    "stream_key_required": "Publish refused: no stream key was given",
    "tenant_inactive": "Publish refused: the organization is deactivated",
    "publisher_already_left": "Publish refused: the connection had already closed",
}


def refusal_text(reason: str) -> str:
    """What a refusal means, in words (the owner's notification, the studio)."""
    return _TEXTS.get(reason, f"Publish refused: {reason}")


def _key(event_id: uuid.UUID) -> str:
    return f"streaming:refused:{event_id}"


async def record_refusal(state: StreamingState, ref: EventRef, reason: str, source: str) -> None:
    """Keep the refusal as the event's last one and tell the owner; never raises."""
    at = utcnow()
    refusal = RefusedPublish(reason=reason, at=at, source=source or None)
    try:
        await state.cache.set(_key(ref.id), refusal.model_dump_json().encode(), ttl=REFUSAL_TTL)
        message = PublishRefused(
            event_id=ref.id,
            reason=reason,
            source=refusal.source,
            text=refusal_text(reason),
            at=at,
        )
        await state.pubsub.publish(user_channel(ref.owner_id), message.model_dump_json().encode())
    except Exception:  # feedback must never change the media server's answer
        log.exception("publish_refusal_not_recorded", event_id=str(ref.id))


async def last_refusal(state: StreamingState, event_id: uuid.UUID) -> RefusedPublish | None:
    raw = await state.cache.get(_key(event_id))
    if raw is None:
        return None
    try:
        return RefusedPublish.model_validate(jsonparse.loads(raw))
    except (jsonparse.MalformedJson, ValueError):
        return None
