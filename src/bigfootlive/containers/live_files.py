"""Which of an event's live files are there yet: its playlists and the live thumbnail.

An event is live as soon as its encoder is let in, but its playlists appear seconds later:
nginx-rtmp writes `/hls/<playback id>.m3u8` after the first fragment, the event's container its
ladder (`master.m3u8`, once every rendition has a playlist), its DVR copy (`dvr/index.m3u8`) and
the first thumbnail after that. A player that asks for one before it is there gets a 404 (a
console error in a browser; Chromium blocks a 404 answered to an image as ERR_BLOCKED_BY_ORB), so
the watch page asks this first (web/watch.py) and starts with what is there.

A file is looked for where this process can see it: NGINX_RTMP_HLS_PATH for nginx-rtmp's HLS
(set by the managed media server), RECORDINGS_DIR for the container's output with local storage
and a local container runtime. Where it cannot tell (S3, Kubernetes, another media server, no
HLS path), the answer is None: the player tries the URL, as it did before.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from bigfootlive.config import Settings
from bigfootlive.containers.previews import DVR_DIR, THUMBNAIL
from bigfootlive.containers.storage import hls_dir_for
from bigfootlive.events.playback import container_packages

MASTER = "master.m3u8"


@dataclass(frozen=True, slots=True)
class LiveFiles:
    """For each playback URL of the watch page: True (there), False (not yet), None (this
    process cannot tell)."""

    hls: bool | None
    abr: bool | None
    dvr: bool | None
    thumbnail: bool | None

    def as_dict(self) -> dict[str, bool | None]:
        return {"hls": self.hls, "abr": self.abr, "dvr": self.dvr, "thumbnail": self.thumbnail}

    def ready(self) -> list[str]:
        """The names that may be asked for now (there, or not known not to be)."""
        return [name for name, there in self.as_dict().items() if there is not False]


def _there(path: Path) -> bool:
    try:
        return os.stat(path).st_size > 0
    except OSError:
        return False


def container_dir(settings: Settings, event_id: uuid.UUID, playback_id: str) -> Path | None:
    """Where the event's container writes what the origin serves, when this process sees it."""
    if settings.recordings_storage != "local" or settings.container_runtime == "kubernetes":
        return None
    return hls_dir_for(settings, event_id, playback_id)


def live_files(
    settings: Settings, event_id: uuid.UUID, playback_id: str, latency_mode: str
) -> LiveFiles:
    """Which of the event's live files are there now (a few stat calls)."""
    live = container_dir(settings, event_id, playback_id)
    abr = None if live is None else _there(live / MASTER)
    if container_packages(settings, latency_mode):  # players read the container's ladder
        hls = abr
    elif settings.media_server == "nginx-rtmp" and settings.nginx_rtmp_hls_path:
        hls = _there(Path(settings.nginx_rtmp_hls_path) / f"{playback_id}.m3u8")
    else:
        hls = None
    return LiveFiles(
        hls=hls,
        abr=abr,
        dvr=None if live is None else _there(live / DVR_DIR / "index.m3u8"),
        thumbnail=None if live is None else _there(live / THUMBNAIL),
    )
