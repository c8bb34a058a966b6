from __future__ import annotations

import datetime as dt
import enum
import uuid

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from bigfootlive.kit.credentials import Credentials


class KeyScope(enum.StrEnum):
    TENANT = "tenant"
    PLATFORM = "platform"


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    scope: KeyScope = KeyScope.TENANT
    expires_at: AwareDatetime | None = None


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    scope: KeyScope
    tenant_id: uuid.UUID | None
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class ApiKeyCreated(ApiKeyOut, Credentials):
    key: str = Field(description="The secret; shown once, only its prefix is kept readable")
