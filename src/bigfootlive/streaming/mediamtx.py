"""MediaMTX external HTTP authentication (`authMethod: http`, `authHTTPAddress`).

MediaMTX posts JSON `{user, password, token, ip, action, path, protocol, id, query, userAgent}`
before a publish, a read (RTSP, RTMP, HLS, WebRTC, SRT) or a playback of a recording; any 2xx
allows, anything else refuses (we answer 401, and MediaMTX then asks an HLS/WebRTC browser for
credentials when it sent none). `query` is the raw query of the reader's URL; `token` is what
MediaMTX extracted itself (a Bearer header, the password, or `?token=` for RTSP/RTMP).

Encoders publish to `live/<playback id>?key=<stream key>` (or pass the key as the password);
players add `?token=<playback token>` to the URL of any protocol (or use it as the password or
a Bearer token). `read` needs the event on air; `playback` (MediaMTX's recordings server) does
not. MediaMTX has no unpublish in its auth hook: its `runOnNotReady` command posts
`{"action": "unpublish", "path": "$MTX_PATH", "id": "$MTX_SOURCE_ID"}` here (docs/streaming.md).
"""

from __future__ import annotations

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

_ACTIONS = {
    "publish": CallbackKind.PUBLISH,
    "read": CallbackKind.PLAY,
    "playback": CallbackKind.PLAYBACK,
    "unpublish": CallbackKind.UNPUBLISH,  # ours, from `runOnNotReady`
}
_INTERNAL = {"api", "metrics", "pprof"}


class MediaMtxAdapter:
    name = "mediamtx"

    def parse(self, fields: Mapping[str, object]) -> MediaCallback:
        action = text(fields, "action")
        if action in _INTERNAL:
            # Access to MediaMTX's own API/metrics is not a viewer's business: denied below.
            return MediaCallback(kind=CallbackKind.OTHER, client_id="", detail={"action": action})
        kind = _ACTIONS.get(action)
        if kind is None:
            raise BadCallback(f"unknown MediaMTX action {action!r}")
        path = text(fields, "path").strip("/")
        app, _, stream = path.rpartition("/")
        if not stream:
            raise BadCallback("path is required")
        args = query_args(text(fields, "query"))
        password = text(fields, "password")
        token = text(fields, "token")
        return MediaCallback(
            kind=kind,
            client_id=text(fields, "id") or text(fields, "ip"),
            stream_key=(args.get("key") or password or None)
            if kind == CallbackKind.PUBLISH
            else None,
            playback_id=stream,
            playback_token=(args.get("token") or token or password or None)
            if kind in (CallbackKind.PLAY, CallbackKind.PLAYBACK)
            else None,
            ip=text(fields, "ip"),
            detail={"app": app, "protocol": text(fields, "protocol"), "action": action},
        )

    def reply(self, callback: MediaCallback, decision: Decision) -> Reply:
        if callback.kind == CallbackKind.OTHER:
            return Reply(401, b"internal endpoints are not open")
        if decision.allowed:
            return Reply(200, b"ok")
        return Reply(401, decision.reason.encode())
