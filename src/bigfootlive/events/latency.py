"""Latency modes: which ones this deployment can deliver, and the player settings of each.

`normal`: the media server's regular segments, the most robust. `low`: the player sits closer
to the live edge (hls.js low-latency mode, a shorter live-sync distance, catch-up by playing
faster). `ultra_low`: only where the media server delivers LL-HLS (or WebRTC/WHEP) itself —
MediaMTX or SRS run by the operator (`MEDIA_SERVER_MODE` external or auto) — and refused at
event creation otherwise, never accepted and ignored. Knows nothing of HTTP.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from bigfootlive.config import Settings
from bigfootlive.errors import Unprocessable
from bigfootlive.events.schemas import LatencyMode

ULTRA_LOW_SERVERS = ("mediamtx", "srs")


class LatencyModeUnavailable(Unprocessable):
    code = "latency_mode_unavailable"
    message = "This latency mode cannot be delivered by the configured media server"


class PlayerSettings(BaseModel):
    """How a player should follow the live edge for the event's latency mode."""

    latency_mode: LatencyMode
    target_latency_seconds: float = Field(
        description="The glass-to-glass delay the mode aims at on this deployment"
    )
    hls_js: dict[str, float | int | bool] = Field(
        description="Options for hls.js (`new Hls(options)`): live-sync distance, catch-up "
        "rate, low-latency mode"
    )
    dvr_window_seconds: int = Field(
        0,
        description="How far back the DVR playlist (`dvr_url`) lets a viewer rewind; 0: live "
        "edge only. With a window, hls_js has no maximum latency, so a rewound player stays "
        "where the viewer put it until it seeks back to `hls.liveSyncPosition` (return to live)",
    )


def ultra_low_supported(settings: Settings) -> bool:
    """MediaMTX or SRS, run by the operator (auto resolves to external for them)."""
    return settings.media_server in ULTRA_LOW_SERVERS and settings.media_server_mode in (
        "auto",
        "external",
    )


def require_latency_mode(settings: Settings, mode: LatencyMode) -> None:
    if mode == LatencyMode.ULTRA_LOW and not ultra_low_supported(settings):
        raise LatencyModeUnavailable(
            "ultra_low latency needs LL-HLS or WebRTC from the media server: MediaMTX or SRS "
            f"in external mode (MEDIA_SERVER={settings.media_server}, "
            f"MEDIA_SERVER_MODE={settings.media_server_mode}); use low or normal",
            latency_mode=mode.value,
            supported=[m.value for m in supported_modes(settings)],
        )


def supported_modes(settings: Settings) -> list[LatencyMode]:
    modes = [LatencyMode.NORMAL, LatencyMode.LOW]
    return [*modes, LatencyMode.ULTRA_LOW] if ultra_low_supported(settings) else modes


LOW_LATENCY_SEGMENT_SECONDS = 1.0


def segment_seconds(settings: Settings, mode: LatencyMode) -> float:
    """The ABR ladder's segment length for the mode: TRANSCODER_SEGMENT_SECONDS for `normal`,
    at most 1 s for `low` and `ultra_low` (a player can only sit a few segments from the edge)."""
    if mode == LatencyMode.NORMAL:
        return settings.transcoder_segment_seconds
    return min(settings.transcoder_segment_seconds, LOW_LATENCY_SEGMENT_SECONDS)


def player_settings(
    settings: Settings, mode: LatencyMode, dvr_window_seconds: int = 0
) -> PlayerSettings:
    player = _player_settings(settings, mode)
    if dvr_window_seconds > 0:
        # hls.js jumps back to the live edge past liveMaxLatencyDuration(Count): not on a
        # rewound player (its catch-up rate applies only near the target latency anyway)
        player.hls_js = {k: v for k, v in player.hls_js.items() if "MaxLatency" not in k}
        player.dvr_window_seconds = dvr_window_seconds
    return player


def _player_settings(settings: Settings, mode: LatencyMode) -> PlayerSettings:
    segment = settings.transcoder_segment_seconds
    if mode == LatencyMode.NORMAL:
        # hls.js defaults, said explicitly: three segments behind the edge
        return PlayerSettings(
            latency_mode=mode,
            target_latency_seconds=round(3 * segment + 3, 1),
            hls_js={
                "lowLatencyMode": False,
                "liveSyncDurationCount": 3,
                "liveMaxLatencyDurationCount": 10,
                "maxLiveSyncPlaybackRate": 1.0,
            },
        )
    if mode == LatencyMode.LOW:
        return PlayerSettings(
            latency_mode=mode,
            target_latency_seconds=4.0,
            hls_js={
                "lowLatencyMode": True,
                "liveSyncDuration": 2.0,
                "liveMaxLatencyDuration": 5.0,
                "maxLiveSyncPlaybackRate": 1.2,
                "backBufferLength": 30,
            },
        )
    return PlayerSettings(  # LL-HLS parts: hls.js follows the server's part hold-back
        latency_mode=mode,
        target_latency_seconds=1.0,
        hls_js={
            "lowLatencyMode": True,
            "liveSyncDuration": 0.5,
            "liveMaxLatencyDuration": 2.0,
            "maxLiveSyncPlaybackRate": 1.5,
            "backBufferLength": 10,
        },
    )
