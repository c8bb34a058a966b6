"""What the events domain publishes: each state change (`schemas.StateChange`) goes out on
the event's state channel, after the commit that made it.
"""

from __future__ import annotations

import uuid


def state_channel(event_id: uuid.UUID) -> str:
    return f"event:{event_id}:state"


CHANGED_CHANNEL = "events:changed"
"""Published (the event's id) after the commit of any change to an event: what processes keep
about it (the WebSocket admission) is dropped."""
