"""What the events domain publishes: each state change (`schemas.StateChange`) goes out on
the event's state channel, after the commit that made it.
"""

from __future__ import annotations

import uuid


def state_channel(event_id: uuid.UUID) -> str:
    return f"event:{event_id}:state"
