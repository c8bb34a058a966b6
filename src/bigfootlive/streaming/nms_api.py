"""Node Media Server 4's REST API (`/api/v1`, on its HTTP port): the short JWT we sign with the
secret NMS runs with (`auth.jwt.secret`, our wrapper's BFL_NMS_API_SECRET; no login round
trip), and the stream's statistics for health (`GET /api/v1/streams/<app>/<name>`)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx
import jwt

from bigfootlive.kit import jsonparse
from bigfootlive.streaming.health import StatsSource, StreamStats

TOKEN_SECONDS = 60

# FLV codec ids as NMS reports them from the encoder's metadata
_VIDEO_CODECS = {7: "H264", 12: "H265", 13: "AV1"}
_AUDIO_CODECS = {2: "MP3", 10: "AAC", 13: "Opus"}


def auth_headers(secret: str, *, now: float | None = None) -> dict[str, str]:
    issued = int(time.time() if now is None else now)
    claims = {"username": "bigfootlive", "iat": issued, "exp": issued + TOKEN_SECONDS}
    return {"Authorization": f"Bearer {jwt.encode(claims, secret, algorithm='HS256')}"}


def stream_url(api_url: str, playback_id: str, app: str = "live") -> str:
    return (
        f"{api_url.rstrip('/')}/api/v1/streams/{quote(app, safe='')}/{quote(playback_id, safe='')}"
    )


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _codec(names: dict[int, str], value: object) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return None
    return names.get(value, str(value))


def parse_stream(body: dict[str, Any], now: float) -> StreamStats | None:
    """One stream's `data` of `GET /api/v1/streams/<app>/<name>`; None without a publisher."""
    data = body.get("data")
    if not isinstance(data, dict):
        return None
    publisher = data.get("publisher")
    if not isinstance(publisher, dict):
        return None
    in_bps = _number(data.get("inBps"))
    fps = _number(publisher.get("videoFramerate"))
    created = _number(publisher.get("createTime"))
    width, height = _number(publisher.get("videoWidth")), _number(publisher.get("videoHeight"))
    return StreamStats(
        at=now,
        publishing=data.get("status") == "publishing",  # not during NMS's resume grace
        bytes_in=int(_number(publisher.get("inBytes")) or 0),
        bitrate_kbps=in_bps * 8 / 1000 if in_bps else None,  # NMS reports bytes per second
        fps=fps or None,
        fps_source="declared" if fps else None,
        width=int(width) if width else None,
        height=int(height) if height else None,
        video_codec=_codec(_VIDEO_CODECS, publisher.get("videoCodec")),
        audio_codec=_codec(_AUDIO_CODECS, publisher.get("audioCodec")),
        uptime_seconds=max(0.0, now - created / 1000) if created else 0.0,
        viewers=int(_number(data.get("subscribers")) or 0),
    )


class NmsStatSource(StatsSource):
    def __init__(self, client: httpx.AsyncClient, api_url: str, secret: str) -> None:
        super().__init__(client)
        self.api_url = api_url
        self.secret = secret

    async def read(self, stream_name: str) -> StreamStats | None:
        response = await self.client.get(
            stream_url(self.api_url, stream_name), headers=auth_headers(self.secret)
        )
        if response.status_code == 404:
            return None  # NMS drops a stream nobody publishes or plays
        response.raise_for_status()
        body = jsonparse.loads(response.content)
        return parse_stream(body, time.time()) if isinstance(body, dict) else None
