"""What the notifications domain publishes to a user's open sockets."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field


class Notification(BaseModel):
    """For the signed-in user alone, on whichever event socket they have open (published on
    `user_channel(user_id)` by the notifications domain)."""

    type: Literal["notification"] = "notification"
    kind: Literal["event.live"]
    event_id: uuid.UUID
    owner: str = Field(description="The streamer's display name")
    title: str
    watch_url: str | None = None


def user_channel(user_id: uuid.UUID | str) -> str:
    """Messages for one user's sockets (each a serialized `Notification`), wherever they are."""
    return f"user:{user_id}"
