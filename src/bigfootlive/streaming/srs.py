"""SRS HTTP callbacks (`http_hooks`): JSON POSTs with an `action` field.

Encoders publish to `live/<playback id>?key=<stream key>`; players add `?token=<playback token>`.
SRS allows only on HTTP 200 with body `0` (or JSON `{"code": 0}`); anything else denies.

HLS (SRS 5+, `hls_ctx on`): the first playlist request of a viewer's session fires `on_play`
with the playlist's query as `param` and the file name as `stream` (`<playback id>.m3u8`,
SRS's own remark: "the stream has extension now"); the extension is dropped here.
SRS serves the `.ts` segments as plain files, unchecked: docs/streaming.md puts nginx's
`auth_request` in front of SRS's HTTP server for `tenant` and `private` events.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from bigfootlive.streaming.base import (
    BadCallback,
    CallbackKind,
    Decision,
    MediaCallback,
    Reply,
    query_args,
    text,
)

_MEDIA_SUFFIXES = (".m3u8", ".flv")

_ACTIONS = {
    "on_publish": CallbackKind.PUBLISH,
    "on_unpublish": CallbackKind.UNPUBLISH,
    "on_play": CallbackKind.PLAY,
    "on_stop": CallbackKind.STOP,
    "on_hls": CallbackKind.SEGMENT,
    "on_dvr": CallbackKind.RECORDED,
    "on_connect": CallbackKind.OTHER,
    "on_close": CallbackKind.OTHER,
}


class SrsAdapter:
    name = "srs"

    def parse(self, fields: Mapping[str, object]) -> MediaCallback:
        action = text(fields, "action")
        kind = _ACTIONS.get(action)
        if kind is None:
            raise BadCallback(f"unknown SRS action {action!r}")
        client_id = text(fields, "client_id")
        if not client_id:
            raise BadCallback("client_id is required")
        args = query_args(text(fields, "param"))
        detail: dict[str, str] = {
            "app": text(fields, "app"),
            "server_id": text(fields, "server_id"),
        }
        for name in ("file", "url", "m3u8", "duration", "seq_no"):
            if name in fields:
                detail[name] = text(fields, name)
        stream = text(fields, "stream")
        for suffix in _MEDIA_SUFFIXES:
            stream = stream.removesuffix(suffix)
        return MediaCallback(
            kind=kind,
            client_id=client_id,
            stream_key=args.get("key") or None,
            playback_id=stream or None,
            playback_token=args.get("token") or None,
            ip=text(fields, "ip"),
            detail=detail,
        )

    def reply(self, callback: MediaCallback, decision: Decision) -> Reply:
        if decision.allowed:
            return Reply(200, b"0")
        body = json.dumps({"code": 403, "msg": decision.reason}).encode()
        return Reply(403, body, media_type="application/json")
