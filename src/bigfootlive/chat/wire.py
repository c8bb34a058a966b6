"""What the chat domain publishes: its pub/sub channels and the messages it broadcasts.

The WebSocket gateway forwards these frames as they are (`realtime.protocol` lists them in
the server messages); the event's container reads `inbound_channel` for auto-moderation.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, Field

from bigfootlive.chat.schemas import ChatMessageOut


class ChatOut(BaseModel):
    type: Literal["message"] = "message"
    message: ChatMessageOut


class Deleted(BaseModel):
    type: Literal["deleted"] = "deleted"
    message_id: uuid.UUID
    by_moderator: bool


class Pinned(BaseModel):
    type: Literal["pinned"] = "pinned"
    message: ChatMessageOut | None


class RoomUpdated(BaseModel):
    type: Literal["room"] = "room"
    slow_mode_seconds: int
    followers_only: bool


class Moderation(BaseModel):
    type: Literal["moderation"] = "moderation"
    action: Literal["timeout", "ban", "unban"]
    user_id: uuid.UUID
    until: dt.datetime | None = None


def chat_channel(event_id: uuid.UUID) -> str:
    """Broadcasts for the event's viewers: each message is one serialized server message."""
    return f"chat:{event_id}"


def control_channel(event_id: uuid.UUID) -> str:
    """Instructions for gateways (kick a user), never forwarded to clients."""
    return f"chat:{event_id}:control"


def inbound_channel(event_id: object) -> str:
    return f"event:{event_id}:chat:inbound"


class ChatMessage(BaseModel):
    message_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    text: str = Field(max_length=4000)
