from __future__ import annotations

from pydantic import BaseModel


class Preferences(BaseModel):
    email_event_live: bool = True
    realtime_event_live: bool = True


class PreferencesUpdate(BaseModel):
    email_event_live: bool | None = None
    realtime_event_live: bool | None = None


class Unsubscribed(BaseModel):
    unsubscribed: bool
    kind: str
