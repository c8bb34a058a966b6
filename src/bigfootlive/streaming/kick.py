"""Drop the publisher of a stopped event at the media server, through its control API.

- SRS (`SRS_API_URL`, its HTTP API): `GET /api/v1/clients` lists the connections; each one that
  publishes the event's stream (`url` `/<app>/<playback id>`, `publish: true`) or is the
  publisher we recorded is removed with `DELETE /api/v1/clients/{id}`.
- MediaMTX (`MEDIAMTX_API_URL`, its control API v3): `GET /v3/paths/get/live/<playback id>`
  names the path's source (`{"type": "rtmpConn", "id": ...}`), which is kicked with
  `POST /v3/<rtmpconns|rtmpsconns|rtspsessions|rtspssessions|srtconns|webrtcsessions>/kick/{id}`.
- Node Media Server (`NMS_API_URL`, its REST API v1, JWT HS256 signed with `NMS_API_SECRET`):
  `DELETE /api/v1/sessions/{publisher id}`; when that session is unknown, the stream's current
  publisher from `GET /api/v1/streams/live/<playback id>` (`data.publisher.id`).
- nginx-rtmp needs no call: its next `on_update` for the publisher is answered 403.

The kick runs after the stop has committed; a media server that cannot be reached is logged
(`publisher_kick_failed`) and the publisher is still refused at its next callback.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import quote

import httpx
import structlog

from bigfootlive.config import Settings
from bigfootlive.kit import jsonparse
from bigfootlive.state import Infrastructure
from bigfootlive.streaming import nms_api

log = structlog.get_logger(__name__)

_TIMEOUT = 3.0
_SRS_PAGE = 1000  # SRS answers the first 10 clients unless asked for more

# MediaMTX path source type -> the API collection that can kick it
_MEDIAMTX_KICKABLE = {
    "rtmpConn": "rtmpconns",
    "rtmpsConn": "rtmpsconns",
    "rtspSession": "rtspsessions",
    "rtspsSession": "rtspssessions",
    "srtConn": "srtconns",
    "webRTCSession": "webrtcsessions",
}


class KickFailed(RuntimeError):
    """The media server's API answered something we cannot act on."""


class Kicker(Protocol):
    async def kick(self, playback_id: str, publisher_id: str | None) -> list[str]:
        """Drop the stream's publisher; the ids of the connections dropped."""
        ...


def _json(response: httpx.Response) -> Mapping[str, object]:
    if response.status_code != 200:
        raise KickFailed(f"{response.request.url.path} answered {response.status_code}")
    try:
        body = jsonparse.loads(response.content)
    except jsonparse.MalformedJson as exc:
        raise KickFailed(f"{response.request.url.path} answered malformed JSON") from exc
    if not isinstance(body, dict):
        raise KickFailed(f"{response.request.url.path} answered {type(body).__name__}")
    return body


class SrsKicker:
    def __init__(self, client: httpx.AsyncClient, api_url: str) -> None:
        self.client = client
        self.base = api_url.rstrip("/")

    async def kick(self, playback_id: str, publisher_id: str | None) -> list[str]:
        listed = _json(
            await self.client.get(
                f"{self.base}/api/v1/clients", params={"start": 0, "count": _SRS_PAGE}
            )
        )
        clients = listed.get("clients")
        if listed.get("code") != 0 or not isinstance(clients, list):
            raise KickFailed(f"SRS answered code {listed.get('code')!r}")
        kicked: list[str] = []
        for client in clients:
            if not isinstance(client, dict) or not client.get("publish"):
                continue
            client_id = str(client.get("id", ""))
            stream = str(client.get("url", "")).split("?", 1)[0].rsplit("/", 1)[-1]
            if client_id and (stream == playback_id or client_id == publisher_id):
                answer = await self.client.delete(
                    f"{self.base}/api/v1/clients/{quote(client_id, safe='')}"
                )
                if answer.status_code == 200 and _json(answer).get("code") == 0:
                    kicked.append(client_id)
                else:
                    log.warning("publisher_kick_refused", server="srs", client_id=client_id)
        return kicked


class MediaMtxKicker:
    def __init__(self, client: httpx.AsyncClient, api_url: str, app: str = "live") -> None:
        self.client = client
        self.base = api_url.rstrip("/")
        self.app = app

    async def kick(self, playback_id: str, publisher_id: str | None) -> list[str]:
        path = f"{self.app}/{playback_id}"
        response = await self.client.get(f"{self.base}/v3/paths/get/{quote(path)}")
        if response.status_code == 404:
            return []  # nobody publishes there (any more)
        source = _json(response).get("source")
        if not isinstance(source, dict):
            return []  # a path without a source: the publisher is already gone
        kind, source_id = str(source.get("type", "")), str(source.get("id", ""))
        collection = _MEDIAMTX_KICKABLE.get(kind)
        if collection is None or not source_id:
            log.warning("publisher_kick_unsupported", server="mediamtx", source_type=kind)
            return []
        answer = await self.client.post(
            f"{self.base}/v3/{collection}/kick/{quote(source_id, safe='')}"
        )
        if answer.status_code == 404:
            return []  # it left in between
        if answer.status_code != 200:
            raise KickFailed(f"MediaMTX answered {answer.status_code} to the kick")
        return [source_id]


class NmsKicker:
    """Node Media Server 4: its REST API takes a JWT signed with the secret it is configured
    with (`auth.jwt.secret`, BFL_NMS_API_SECRET of our wrapper), so no login round trip."""

    def __init__(
        self, client: httpx.AsyncClient, api_url: str, secret: str, app: str = "live"
    ) -> None:
        self.client = client
        self.base = api_url.rstrip("/")
        self.secret = secret
        self.app = app

    async def _delete(self, session_id: str) -> bool:
        answer = await self.client.delete(
            f"{self.base}/api/v1/sessions/{quote(session_id, safe='')}",
            headers=nms_api.auth_headers(self.secret),
        )
        if answer.status_code == 404:
            return False
        _json(answer)  # KickFailed unless 200
        return True

    async def kick(self, playback_id: str, publisher_id: str | None) -> list[str]:
        if publisher_id and await self._delete(publisher_id):
            return [publisher_id]
        response = await self.client.get(
            nms_api.stream_url(self.base, playback_id, self.app),
            headers=nms_api.auth_headers(self.secret),
        )
        if response.status_code == 404:
            return []  # nobody publishes there (any more)
        data = _json(response).get("data")
        publisher = data.get("publisher") if isinstance(data, dict) else None
        current = str(publisher.get("id", "")) if isinstance(publisher, dict) else ""
        if current and await self._delete(current):
            return [current]
        return []


def _configured(settings: Settings) -> bool:
    server = settings.media_server
    return not settings.media_server_off and (
        (server == "srs" and bool(settings.srs_api_url))
        or (server == "mediamtx" and bool(settings.mediamtx_api_url))
        or (
            server == "node-media-server"
            and bool(settings.nms_api_url)
            and settings.nms_api_secret is not None
        )
    )


def kicker_for(settings: Settings, client: httpx.AsyncClient) -> Kicker | None:
    if settings.media_server == "srs" and settings.srs_api_url:
        return SrsKicker(client, settings.srs_api_url)
    if settings.media_server == "mediamtx" and settings.mediamtx_api_url:
        return MediaMtxKicker(client, settings.mediamtx_api_url)
    if (
        settings.media_server == "node-media-server"
        and settings.nms_api_url
        and settings.nms_api_secret is not None
    ):
        return NmsKicker(client, settings.nms_api_url, settings.nms_api_secret.get_secret_value())
    return None


async def kick_publisher(
    state: Infrastructure, event_id: uuid.UUID, playback_id: str, publisher_id: str | None
) -> None:
    """The events hook EVENT_STOPPED: runs once the stop has committed."""
    if not _configured(state.settings):
        return
    async with httpx.AsyncClient(timeout=_TIMEOUT) as client:
        kicker = kicker_for(state.settings, client)
        if kicker is None:
            return
        try:
            kicked = await kicker.kick(playback_id, publisher_id)
        except (httpx.HTTPError, KickFailed) as exc:
            log.warning(
                "publisher_kick_failed",
                server=state.settings.media_server,
                event_id=str(event_id),
                error=type(exc).__name__,
                detail=str(exc) if isinstance(exc, KickFailed) else None,
            )
            return
    log.info(
        "publisher_kicked",
        server=state.settings.media_server,
        event_id=str(event_id),
        connections=kicked,
    )
