from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bigfootlive.events.latency import PlayerSettings
from bigfootlive.events.schemas import EventStatus, IngestOut, Visibility
from bigfootlive.kit.credentials import Credentials


class RefusedPublish(BaseModel):
    reason: str = Field(description="Our refusal code, e.g. event_not_started, unknown_stream")
    at: dt.datetime
    source: str | None = Field(None, description="The encoder's address as the server saw it")


class TokenRules(BaseModel):
    query_parameter: str = "token"
    applies_to: list[str] = Field(
        description="The fields above whose URLs, and every playlist, segment and rendition "
        "under them, need the token"
    )
    expires_at: dt.datetime
    renew: str = "GET this endpoint again for a fresh token before it expires"


class StreamConfig(Credentials):
    event_id: uuid.UUID
    status: EventStatus
    visibility: Visibility
    playback_id: str
    hls_url: str = Field(description="Under CDN_BASE_URL, named by the playback id")
    playback_token: str | None = Field(None, description="For tenant-only and private events")
    playback_token_expires_at: dt.datetime | None = None
    ingest: IngestOut | None = Field(None, description="Only for the event's owner and admins")
    last_refused_publish: RefusedPublish | None = Field(
        None, description="The event's last refused publish; only for its owner and admins"
    )
    abr_master_url: str | None = Field(
        None, description="The transcoded ladder's master playlist, when a ladder runs"
    )
    vod_urls: list[str] = Field(
        default_factory=list, description="Master playlists of the event's published recordings"
    )
    dvr_url: str | None = Field(
        None,
        description="While on air with a DVR window: the live playlist with the event's rewind "
        "window (player.dvr_window_seconds); seek back in it, seek to its end to return to live",
    )
    thumbnail_url: str | None = Field(
        None, description="While on air: a frame of the live stream, refreshed every few seconds"
    )
    files_ready: dict[str, bool | None] | None = Field(
        None,
        description="While on air, for each live URL given (hls_url, abr_master_url, dvr_url, "
        "thumbnail_url): true when its file is served, false while it is not there yet (the "
        "first seconds on air: asking for it answers 404), null where this server cannot tell "
        "(another media server, object storage). A player polls this before it starts",
    )
    poster_url: str | None = Field(None, description="A frame of the published recording")
    token_rules: TokenRules | None = Field(
        None, description="How the playback token goes with the URLs (tenant-only and private)"
    )
    player: PlayerSettings = Field(description="Live-sync settings of the event's latency mode")


class StreamHealth(BaseModel):
    event_id: uuid.UUID
    status: EventStatus
    verdict: Literal["ok", "degraded", "offline"]
    reasons: list[str]
    current: dict[str, Any] | None
    history: list[dict[str, Any]]


class WebhookIn(BaseModel):
    """Generic JSON callback for media servers without an adapter (or MediaMTX run hooks)."""

    model_config = ConfigDict(extra="ignore")

    action: Literal["publish", "unpublish", "play", "stop", "publisher_alive", "recorded"]
    client_id: str = Field("", max_length=200)
    stream_key: str | None = Field(None, max_length=200)
    playback_token: str | None = Field(None, max_length=4000)
    ip: str = Field("", max_length=64)


class WebhookOut(BaseModel):
    allowed: bool
    reason: str
