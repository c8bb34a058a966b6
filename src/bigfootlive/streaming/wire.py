"""What the streaming domain puts on the wire: the `system` message of kind `publish_refused`
that `streaming.feedback` publishes on the owner's `user_channel` (realtime relays it as is)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, Field


class PublishRefused(BaseModel):
    """For the event's owner alone (on `user_channel(owner_id)`, published by the streaming
    domain): the media server refused an encoder's publish, and why."""

    type: Literal["system"] = "system"
    kind: Literal["publish_refused"] = "publish_refused"
    event_id: uuid.UUID
    reason: str = Field(description="Our refusal code, e.g. event_not_started, unknown_stream")
    source: str | None = Field(None, description="The encoder's address as the server saw it")
    text: str
    at: dt.datetime
