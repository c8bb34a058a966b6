from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from pydantic import BaseModel, Field

from bigfootlive.kit.credentials import Credentials


class WebhookEventType(enum.StrEnum):
    EVENT_LIVE = "event.live"
    EVENT_ENDED = "event.ended"
    EVENT_RECONNECTING = "event.reconnecting"
    RECORDING_READY = "recording.ready"
    USER_CREATED = "user.created"


class EndpointCreate(BaseModel):
    url: str = Field(min_length=8, max_length=2000)
    event_types: list[WebhookEventType] = Field(min_length=1)
    description: str = Field(default="", max_length=500)


class EndpointUpdate(BaseModel):
    url: str | None = Field(default=None, min_length=8, max_length=2000)
    event_types: list[WebhookEventType] | None = Field(default=None, min_length=1)
    description: str | None = Field(default=None, max_length=500)
    is_active: bool | None = None


class EndpointOut(BaseModel):
    id: uuid.UUID
    url: str
    description: str
    event_types: list[WebhookEventType]
    is_active: bool
    created_at: dt.datetime


class EndpointWithSecret(EndpointOut, Credentials):
    secret: str = Field(description="The signing secret; shown only once")


class DeliveryOut(BaseModel):
    id: uuid.UUID
    endpoint_id: uuid.UUID
    message_id: str
    event_type: str
    payload: dict[str, Any]
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_duration_ms: int | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None
