from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, ConfigDict, Field


class ChatMessageOut(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    user_id: uuid.UUID | None
    author: str
    body: str
    reply_to: uuid.UUID | None
    created_at: dt.datetime


class ChatSend(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(max_length=10_000)
    reply_to: uuid.UUID | None = None


class RoomSettingsOut(BaseModel):
    slow_mode_seconds: int
    followers_only: bool
    pinned: ChatMessageOut | None


class RoomSettingsPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slow_mode_seconds: int | None = Field(None, ge=0, le=3600)
    followers_only: bool | None = None


class TimeoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: int = Field(ge=1)
    reason: str = Field("", max_length=500)


class BanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=500)


class PinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: uuid.UUID


class BanOut(BaseModel):
    user_id: uuid.UUID
    banned_by: uuid.UUID | None
    reason: str
    created_at: dt.datetime


class PresenceOut(BaseModel):
    viewers: int
    unique_viewers: int
