"""The API of an event's simulcast destinations. The stream key goes in, never out."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Platform(enum.StrEnum):
    YOUTUBE = "youtube"
    TWITCH = "twitch"
    FACEBOOK = "facebook"
    KICK = "kick"
    CUSTOM = "custom"  # any rtmp:// or rtmps:// URL


class DestinationState(enum.StrEnum):
    IDLE = "idle"  # the event is not live (or the destination is disabled)
    CONNECTING = "connecting"
    LIVE = "live"
    RETRYING = "retrying"  # the last attempt failed; another one follows after a back-off
    FAILED = "failed"  # given up (or refused for good) until the event goes live again
    STOPPED = "stopped"  # the event ended


class SimulcastStateMessage(BaseModel):
    """For the event's owner (on `user_channel(owner_id)`, published by the event's container;
    realtime relays it as is): a destination's state changed, and why."""

    type: Literal["system"] = "system"
    kind: Literal["simulcast_state"] = "simulcast_state"
    event_id: uuid.UUID
    destination_id: uuid.UUID
    name: str
    state: DestinationState
    reason: str | None = None
    attempts: int = 0
    text: str
    at: dt.datetime


class DestinationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: Platform
    name: str | None = Field(None, min_length=1, max_length=100)
    # the ingest server; required for `custom`, defaults to the platform's template otherwise
    url: str | None = Field(None, min_length=1, max_length=900)
    stream_key: str = Field(min_length=1, max_length=512)
    enabled: bool = True


class DestinationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=100)
    url: str | None = Field(None, min_length=1, max_length=900)
    stream_key: str | None = Field(None, min_length=1, max_length=512)
    enabled: bool | None = None


class DestinationOut(BaseModel):
    """A destination as its managers see it: the key only as a masked hint."""

    id: uuid.UUID
    event_id: uuid.UUID
    name: str
    platform: Platform
    url: str
    stream_key_hint: str
    enabled: bool
    state: DestinationState
    state_reason: str | None
    state_changed_at: dt.datetime | None
    attempts: int
    created_at: dt.datetime
    updated_at: dt.datetime
