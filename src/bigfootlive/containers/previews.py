"""Previews and DVR: what the event's container makes of the ingest besides the video itself.

While the event is on air one ffmpeg copies the ingest (`-c copy`, no re-encode) into the DVR
playlist `<live dir>/dvr/index.m3u8`: a sliding window as long as the event's
`dvr_window_seconds` (at least three segments, so the copy also feeds the thumbnails of an
event without rewind), each segment stamped with `EXT-X-PROGRAM-DATE-TIME` so a clip can be
cut by wall-clock time (clips.py). Every PREVIEW_INTERVAL_SECONDS the newest segment gives the
live thumbnail `<live dir>/thumbnail.jpg` (one decoded frame, written to a temporary file and
renamed, so a viewer never reads half a JPEG). The live dir is the ladder's
(`live/<playback id>/`, served under the same delivery authorization as the video).

`grab_frame` also makes the posters of recordings (vod.py) and clips.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
from collections.abc import Callable
from pathlib import Path

import structlog

from bigfootlive.config import Settings
from bigfootlive.containers.transcoder import Rendition, Transcoder, pull_args
from bigfootlive.events.schemas import EventStatus

log = structlog.get_logger(__name__)

DVR_DIR = "dvr"
THUMBNAIL = "thumbnail.jpg"
POSTER = "poster.jpg"
_URI = re.compile(r"^[^#\s].*$", re.MULTILINE)


def dvr_command(
    input_url: str,
    out_dir: Path,
    *,
    segment_seconds: float,
    window_seconds: int,
    ffmpeg: str = "ffmpeg",
) -> list[str]:
    """The ingest as it is, cut into a sliding-window playlist of `window_seconds`
    (`append_list`: a restarted copy continues the window instead of starting a new one)."""
    size = max(3, math.ceil(window_seconds / segment_seconds) + 1)
    return [
        *pull_args(ffmpeg, input_url),
        "-map", "0:v?", "-map", "0:a?", "-c", "copy",
        "-f", "hls",
        "-hls_time", str(segment_seconds),
        "-hls_list_size", str(size),
        # omit_endlist: a copy that stops (publisher gone) leaves a live playlist, not an ended one
        "-hls_flags",
        "independent_segments+delete_segments+program_date_time+append_list+omit_endlist",
        "-hls_segment_filename", str(out_dir / "seg_%06d.ts"),
        str(out_dir / "index.m3u8"),
    ]  # fmt: skip


def segments_of(playlist: Path) -> list[Path]:
    """The media segments a playlist names, oldest first ([] when it is not there)."""
    try:
        text = playlist.read_text()
    except OSError:
        return []
    return [playlist.parent / line.split("?", 1)[0] for line in _URI.findall(text)]


async def grab_frame(
    ffmpeg: str, source: Path, target: Path, *, at: float = 0.0, height: int = 360
) -> bool:
    """One frame of `source` (`at` seconds in) as a JPEG `height` pixels high, written
    atomically to `target`; False when there is no picture (audio only, unreadable)."""
    tmp = target.with_name(target.name + ".tmp")
    command = [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-ss", f"{max(at, 0.0):.3f}", "-i", str(source),
        "-map", "0:v:0", "-frames:v", "1", "-vf", f"scale=-2:{height}", "-q:v", "4",
        "-f", "image2", "-c:v", "mjpeg", "-update", "1", str(tmp),
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    except TimeoutError:
        process.kill()
        await process.wait()
        return False
    if process.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
        log.info(
            "frame_grab_failed", source=source.name, error=stderr.decode(errors="replace")[-200:]
        )
        with contextlib.suppress(OSError):
            tmp.unlink()
        return False
    os.replace(tmp, target)
    return True


class Previews:
    """The DVR copy and the live thumbnail of one event, while it is on air."""

    def __init__(
        self,
        settings: Settings,
        live_dir: Path,
        pull_url: Callable[[], str],
        segment_seconds: float,
        window_seconds: int,
    ) -> None:
        self.settings = settings
        self.live_dir = live_dir
        self.dvr_dir = live_dir / DVR_DIR
        self.pull_url = pull_url
        self.segment_seconds = segment_seconds
        self.window_seconds = window_seconds
        self.copy: Transcoder | None = None
        self.thumbnails = 0
        self._loop: asyncio.Task[None] | None = None

    async def follow(self, status: EventStatus) -> None:
        if status.is_finished:
            await self.close()
        elif status.is_on_air and self.copy is None and self.settings.previews_enabled:
            self._start()

    def _start(self) -> None:
        def command() -> list[str]:
            return dvr_command(
                self.pull_url(),
                self.dvr_dir,
                segment_seconds=self.segment_seconds,
                window_seconds=self.window_seconds,
                ffmpeg=self.settings.ffmpeg_path,
            )

        self.copy = Transcoder(command, self.live_dir, [Rendition(DVR_DIR, "0k")], name="dvr")
        self.copy.start()
        self._loop = asyncio.create_task(self._thumbnails(), name="thumbnails")

    async def _thumbnails(self) -> None:
        last: Path | None = None
        while True:
            segments = segments_of(self.dvr_dir / "index.m3u8")
            newest = segments[-1] if segments else None
            if newest is not None and newest != last and newest.is_file():
                target = self.live_dir / THUMBNAIL
                if await grab_frame(self.settings.ffmpeg_path, newest, target):
                    last = newest
                    self.thumbnails += 1
            await asyncio.sleep(self.settings.preview_interval_seconds)

    async def close(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
            self._loop = None
        if self.copy is not None:
            await self.copy.stop()
