"""Node Media Server (npm `node-media-server` 4.x) through our wrapper script
(streaming/nms/bigfootlive-nms.js), which posts NMS's own notify payload as JSON
`{action, id, ip, app, name, query, protocol}` with `action` one of NMS's events and holds the
session until we answer: 2xx allows, anything else makes the wrapper close the session.

Encoders publish to `rtmp://<nms>/live/<playback id>?key=<stream key>`; players read
`rtmp://<nms>/live/<playback id>?token=<playback token>` or the HTTP-FLV
`http://<nms>:<http port>/live/<playback id>.flv?token=...`. `query` is the parsed query of the
stream URL (an object; a query string is accepted too).
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
    "prePublish": CallbackKind.PUBLISH,
    "postPublish": CallbackKind.OTHER,
    "donePublish": CallbackKind.UNPUBLISH,
    "prePlay": CallbackKind.PLAY,
    "postPlay": CallbackKind.OTHER,
    "donePlay": CallbackKind.STOP,
    "postRecord": CallbackKind.OTHER,
    "doneRecord": CallbackKind.OTHER,
}


def _query(value: object) -> dict[str, str]:
    """NMS parses the query with node's `querystring`: a repeated name becomes a list."""
    if value is None:
        return {}
    if isinstance(value, str):
        return query_args(value)
    if not isinstance(value, Mapping):
        raise BadCallback("field 'query' must be an object or a query string")
    out: dict[str, str] = {}
    for name, item in value.items():
        first = item[0] if isinstance(item, list) and item else item
        if isinstance(first, str):
            out[str(name)] = first
    return out


def _address(ip: str) -> str:
    """NMS gives `<remote address>:<remote port>`, IPv4 as `::ffff:a.b.c.d`: the address."""
    host, _, port = ip.rpartition(":")
    if host and not host.endswith(":") and port.isdigit():
        ip = host
    return ip.removeprefix("::ffff:")


class NodeMediaServerAdapter:
    name = "node-media-server"

    def parse(self, fields: Mapping[str, object]) -> MediaCallback:
        action = text(fields, "action")
        kind = _ACTIONS.get(action)
        if kind is None:
            raise BadCallback(f"unknown Node Media Server action {action!r}")
        client_id = text(fields, "id")
        if not client_id:
            raise BadCallback("id is required")
        args = _query(fields.get("query"))
        publish_side = kind in (CallbackKind.PUBLISH, CallbackKind.UNPUBLISH)
        return MediaCallback(
            kind=kind,
            client_id=client_id,
            stream_key=(args.get("key") or None) if publish_side else None,
            playback_id=text(fields, "name") or None,
            playback_token=None if publish_side else (args.get("token") or None),
            ip=_address(text(fields, "ip")),
            detail={"app": text(fields, "app"), "protocol": text(fields, "protocol")},
        )

    def reply(self, callback: MediaCallback, decision: Decision) -> Reply:
        if decision.allowed:
            return Reply(200, b"ok")
        return Reply(403, decision.reason.encode())
