"""nginx-rtmp (libnginx-mod-rtmp) `on_*` notifications: form-encoded POSTs.

Layout (see docs/streaming.md): encoders publish to `ingest/<stream key>`; `on_publish` answers
302 with `Location: rtmp://<nginx>/live/<playback id>` so nginx relays the stream into `live`,
which alone writes HLS, named by the playback id. A plain 3xx rename would keep the key as the
HLS file name. `on_update` is answered 403 once the event is stopped, which makes nginx drop
the publisher. Deny = any 4xx; allow = 2xx.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping

from bigfootlive.events.playback import INTERNAL_PULL_FLASHVER
from bigfootlive.streaming.base import (
    BadCallback,
    CallbackKind,
    Decision,
    MediaCallback,
    Reply,
    text,
)

_CALLS = {
    "publish": CallbackKind.PUBLISH,
    "publish_done": CallbackKind.UNPUBLISH,
    "done": CallbackKind.UNPUBLISH,
    "update_publish": CallbackKind.PUBLISHER_ALIVE,
    "play": CallbackKind.PLAY,
    "update_play": CallbackKind.PLAYER_ALIVE,
    "play_done": CallbackKind.STOP,
    "record_done": CallbackKind.RECORDED,
    "connect": CallbackKind.OTHER,
}

_PUBLISH_SIDE = {
    CallbackKind.PUBLISH,
    CallbackKind.UNPUBLISH,
    CallbackKind.PUBLISHER_ALIVE,
    CallbackKind.RECORDED,
}


class NginxRtmpAdapter:
    name = "nginx-rtmp"

    def __init__(self, relay_base: str) -> None:
        self.relay_base = relay_base.rstrip("/")

    def parse(self, fields: Mapping[str, object]) -> MediaCallback:
        call = text(fields, "call")
        kind = _CALLS.get(call)
        if kind is None:
            raise BadCallback(f"unknown nginx-rtmp call {call!r}")
        name = text(fields, "name")
        client_id = text(fields, "clientid")
        if not client_id:
            raise BadCallback("clientid is required")
        stream_key: str | None = None
        playback_id: str | None = None
        # Query arguments of the RTMP URL arrive as extra form fields.
        if text(fields, "app") == "live":
            playback_id = name or None
            stream_key = text(fields, "key") or None
        elif kind in _PUBLISH_SIDE:
            stream_key = text(fields, "key") or name or None
        else:
            # A reader of the ingest application is nginx's own relay to `live` (the ingest
            # application allows play from 127.0.0.1 only): nothing to decide.
            kind = CallbackKind.OTHER
        detail = {"app": text(fields, "app")}
        if kind == CallbackKind.RECORDED:
            detail["path"] = text(fields, "path")
        return MediaCallback(
            kind=kind,
            client_id=client_id,
            stream_key=stream_key,
            playback_id=playback_id,
            playback_token=text(fields, "token") or None,
            ip=text(fields, "addr"),
            detail=detail,
        )

    def reply(self, callback: MediaCallback, decision: Decision) -> Reply:
        if not decision.allowed:
            return Reply(403, decision.reason.encode())
        if callback.kind == CallbackKind.PUBLISH and decision.relay_to:
            # An rtmp:// Location makes nginx relay (push) the stream there.
            location = f"{self.relay_base}/{decision.relay_to}"
            return Reply(302, b"", headers={"Location": location})
        return Reply(200, b"ok")


def is_viewer(client: ET.Element) -> bool:
    """A playing client that is not one of our own pulls (transcoder, recorder)."""
    if client.find("publishing") is not None:
        return False
    return (client.findtext("flashver") or "") != INTERNAL_PULL_FLASHVER
