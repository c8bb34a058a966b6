"""Our own typed media-server callbacks. Adapters translate vendor payloads into these at the
edge and turn a `Decision` back into the vendor's answer; the domain never sees a vendor field."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote


class CallbackKind(enum.StrEnum):
    PUBLISH = "publish"  # an encoder wants to publish
    UNPUBLISH = "unpublish"  # the publisher went away
    PUBLISHER_ALIVE = "publisher_alive"  # periodic: may the publisher go on?
    PLAY = "play"  # a player wants to read
    PLAYBACK = "playback"  # a player wants to read a recording (the event may be over)
    PLAYER_ALIVE = "player_alive"  # periodic: may the player go on?
    STOP = "stop"  # a player went away
    SEGMENT = "segment"  # an HLS segment was written
    RECORDED = "recorded"  # a recording file was closed
    OTHER = "other"  # something we do not act on (answered "allowed")


class BadCallback(ValueError):
    """The payload is not a callback this adapter understands (answered 400)."""


@dataclass(frozen=True, slots=True)
class MediaCallback:
    kind: CallbackKind
    client_id: str
    stream_key: str | None = None
    playback_id: str | None = None
    playback_token: str | None = None
    ip: str = ""
    detail: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = "ok"
    relay_to: str | None = None  # playback id the publish should be relayed to (nginx-rtmp)
    went_to: str | None = None  # the event's status when the callback changed it (logged)

    @classmethod
    def allow(cls, relay_to: str | None = None, went_to: str | None = None) -> Decision:
        return cls(True, "ok", relay_to, went_to)

    @classmethod
    def deny(cls, reason: str) -> Decision:
        return cls(False, reason)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes = b""
    media_type: str = "text/plain"
    headers: Mapping[str, str] = field(default_factory=dict)


class MediaServerAdapter(Protocol):
    name: str

    def parse(self, fields: Mapping[str, object]) -> MediaCallback: ...

    def reply(self, callback: MediaCallback, decision: Decision) -> Reply: ...


def query_args(raw: str) -> dict[str, str]:
    """`?a=1&b=2` or `a=1&b=2` into a dict (first value wins): what
    `parse_qsl(raw.lstrip("?"), keep_blank_values=True)` gives, in a third of its time for a
    media server's form (~8 us for nginx-rtmp's: its loop unquotes every name and value; here
    only those with a `%` or a `+`)."""
    out: dict[str, str] = {}
    for pair in raw.lstrip("?").split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        if "%" in pair or "+" in pair:
            name = unquote(name.replace("+", " "))
            value = unquote(value.replace("+", " "))
        if name not in out:
            out[name] = value
    return out


def text(fields: Mapping[str, object], name: str) -> str:
    value = fields.get(name)
    if value is None:
        return ""
    if isinstance(value, str | int | float):
        return str(value)
    raise BadCallback(f"field {name!r} must be a string")
