"""Playback ids in URLs, ingest addresses, and signed expiring playback tokens.

A stream key never appears in a playback URL: HLS is named by the public playback id. For
nginx-rtmp the encoder publishes to the `ingest` application with the key as the stream name and
BigfootLive relays it to `live/<playback id>`; SRS and MediaMTX take the key as a query parameter
of `live/<playback id>`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass

import jwt

from bigfootlive.config import Settings
from bigfootlive.errors import Forbidden
from bigfootlive.events.schemas import IngestOut

_ALGORITHM = "HS256"
_AUDIENCE = "bigfootlive-playback"
# Our own pulls (transcoder, recorder) of a stream: `p1.<expiry, base 36>.<HMAC>`, about 40
# characters. nginx-rtmp cuts a play name plus its `?args` at about 256 bytes, so a playback JWT
# (about 300 characters) cannot ride on an RTMP pull URL.
INTERNAL_PULL_PREFIX = "p1."
INTERNAL_PULL_TTL_SECONDS = 600
# The flash version our pulls announce: how the media server's stats tell them from viewers.
INTERNAL_PULL_FLASHVER = "BigfootLive-pull"


class InvalidPlaybackToken(Forbidden):
    code = "invalid_playback_token"
    message = "The playback token is not valid for this event"


@dataclass(frozen=True, slots=True)
class PlaybackClaims:
    event_id: uuid.UUID
    playback_id: str
    viewer_id: uuid.UUID | None
    expires_at: int


class PlaybackTokens:
    """HS256 tokens with their own key (derived from JWT_SECRET) and audience, so an access
    token can never pass for a playback token or the other way round."""

    def __init__(self, settings: Settings) -> None:
        self.ttl = settings.playback_token_ttl_seconds
        self.issuer = settings.jwt_issuer
        secrets = [settings.jwt_secret, *settings.jwt_previous_secrets]
        self._keys = [
            hashlib.sha256(b"bfl-playback:" + s.get_secret_value().encode()).digest()
            for s in secrets
        ]

    def issue(
        self,
        *,
        event_id: uuid.UUID,
        playback_id: str,
        viewer_id: uuid.UUID | None,
        now: dt.datetime | None = None,
        ttl: int | None = None,
    ) -> tuple[str, int]:
        now = now or dt.datetime.now(dt.UTC)
        exp = int(now.timestamp()) + (self.ttl if ttl is None else ttl)
        claims: dict[str, object] = {
            "iss": self.issuer,
            "aud": _AUDIENCE,
            "ev": str(event_id),
            "pb": playback_id,
            "iat": int(now.timestamp()),
            "exp": exp,
        }
        if viewer_id is not None:
            claims["sub"] = str(viewer_id)
        return jwt.encode(claims, self._keys[0], algorithm=_ALGORITHM), exp

    def verify(self, token: str) -> PlaybackClaims:
        for key in self._keys:
            try:
                payload = jwt.decode(
                    token,
                    key,
                    algorithms=[_ALGORITHM],
                    audience=_AUDIENCE,
                    issuer=self.issuer,
                    options={"require": ["exp", "iat", "ev", "pb", "aud", "iss"]},
                )
            except jwt.ExpiredSignatureError as exc:
                raise InvalidPlaybackToken(
                    "The playback token has expired", code="playback_token_expired"
                ) from exc
            except jwt.InvalidSignatureError:
                continue
            except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
                raise InvalidPlaybackToken() from exc
            try:
                sub = payload.get("sub")
                return PlaybackClaims(
                    event_id=uuid.UUID(str(payload["ev"])),
                    playback_id=str(payload["pb"]),
                    viewer_id=None if sub is None else uuid.UUID(str(sub)),
                    expires_at=int(payload["exp"]),
                )
            except (ValueError, TypeError, KeyError) as exc:
                raise InvalidPlaybackToken() from exc
        raise InvalidPlaybackToken()

    def _pull_mac(self, key: bytes, playback_id: str, expires: str) -> str:
        mac = hmac.new(key, f"pull:{playback_id}:{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:24]).decode().rstrip("=")

    def issue_internal_pull(
        self, playback_id: str, *, ttl: int = INTERNAL_PULL_TTL_SECONDS, now: float | None = None
    ) -> str:
        """A short credential for BigfootLive's own RTMP pull of one stream."""
        expires = _base36(int(now if now is not None else time.time()) + ttl)
        return (
            f"{INTERNAL_PULL_PREFIX}{expires}.{self._pull_mac(self._keys[0], playback_id, expires)}"
        )

    def verify_internal_pull(
        self, token: str, playback_id: str, *, allow_expired: bool = False
    ) -> bool:
        """True for a pull credential of this playback id (unexpired, unless `allow_expired`:
        a connection opened in time is not cut when its credential expires)."""
        if not token.startswith(INTERNAL_PULL_PREFIX) or len(token) > 100:
            return False
        expires, _, mac = token[len(INTERNAL_PULL_PREFIX) :].partition(".")
        try:
            expiry = int(expires, 36)
        except ValueError:
            return False
        if not allow_expired and expiry < time.time():
            return False
        return any(
            hmac.compare_digest(mac, self._pull_mac(key, playback_id, expires))
            for key in self._keys
        )

    def verify_for(self, token: str, event_id: uuid.UUID) -> PlaybackClaims:
        claims = self.verify(token)
        if claims.event_id != event_id:
            raise InvalidPlaybackToken()
        return claims


def _base36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        value, rest = divmod(value, 36)
        out = digits[rest] + out
        if value == 0:
            return out


def ingest_for(settings: Settings, playback_id: str, stream_key: str) -> IngestOut:
    base = f"rtmp://{settings.rtmp_ingest_host}:{settings.rtmp_port}"
    if settings.media_server == "nginx-rtmp":
        server = f"{base}/ingest"
        return IngestOut(
            server_url=server, stream_key=stream_key, publish_url=f"{server}/{stream_key}"
        )
    server = f"{base}/live"
    key = f"{playback_id}?key={stream_key}"
    return IngestOut(server_url=server, stream_key=key, publish_url=f"{server}/{key}")


def watch_url(settings: Settings, event_id: uuid.UUID) -> str:
    """The event's watch page: the link streamers share."""
    return f"{settings.public_base_url.rstrip('/')}/watch/{event_id}"


def viewer_token(
    tokens: PlaybackTokens,
    *,
    event_id: uuid.UUID,
    playback_id: str,
    visibility: str,
    viewer_id: uuid.UUID | None,
) -> tuple[str, int] | None:
    """The playback token a viewer's player needs (token, expiry), None for a public event.
    Call only for a viewer already allowed to see the event."""
    if visibility == "public":
        return None
    return tokens.issue(event_id=event_id, playback_id=playback_id, viewer_id=viewer_id)


def with_token(url: str, token: str | None) -> str:
    return url if token is None else f"{url}?token={token}"


def hls_url(settings: Settings, playback_id: str, latency_mode: str = "normal") -> str:
    """The playlist a player opens for the event: the media server's HLS, except for a
    low-latency event on nginx-rtmp, whose HLS has one fragment length for every stream: there
    the event's container packages the stream in 1 s segments (the ABR ladder, or a copy of the
    ingest when there is no ladder) and players open its playlist."""
    if container_packages(settings, latency_mode):
        return f"{settings.cdn_base_url.rstrip('/')}/live/{playback_id}/master.m3u8"
    return media_server_hls_url(settings, playback_id)


def container_packages(settings: Settings, latency_mode: str) -> bool:
    """Whether players read the HLS the event's container writes (see `hls_url`)."""
    return settings.media_server == "nginx-rtmp" and latency_mode != "normal"


def media_server_hls_url(settings: Settings, playback_id: str) -> str:
    cdn = settings.cdn_base_url.rstrip("/")
    if settings.media_server == "mediamtx":
        return f"{cdn}/live/{playback_id}/index.m3u8"
    if settings.media_server == "srs":
        return f"{cdn}/live/{playback_id}.m3u8"
    if settings.media_server == "node-media-server":
        return f"{cdn}/live/{playback_id}.flv"  # NMS 4 serves HTTP-FLV, no HLS
    return f"{cdn}/hls/{playback_id}.m3u8"


def thumbnail_url(settings: Settings, playback_id: str) -> str:
    """The live thumbnail the event's container refreshes while on air (containers/previews.py);
    served like the ladder, under the same delivery authorization as the video."""
    return f"{settings.cdn_base_url.rstrip('/')}/live/{playback_id}/thumbnail.jpg"


def dvr_url(settings: Settings, playback_id: str) -> str:
    """The DVR playlist: the live stream with the event's rewind window (a sliding window)."""
    return f"{settings.cdn_base_url.rstrip('/')}/live/{playback_id}/dvr/index.m3u8"
