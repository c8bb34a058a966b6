"""The optional per-event transcoder: ffmpeg pulls the ingest and writes an HLS ABR ladder.

One ffmpeg process encodes every rendition (one decode, one split) and writes a master playlist
plus one media playlist per rendition: `<dir>/master.m3u8`, `<dir>/<name>/index.m3u8`. With
recording on the playlists keep every segment (`EVENT` type, `append_list`), so a restarted
worker continues the same recording instead of starting a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from bigfootlive.config import Settings
from bigfootlive.events.playback import INTERNAL_PULL_FLASHVER
from bigfootlive.kit.backoff import Backoff

log = structlog.get_logger(__name__)

_RENDITION = re.compile(r"^(?P<name>[a-z0-9_-]+):(?:(?P<w>\d+)x(?P<h>\d+):)?(?P<bitrate>\d+k)$")


@dataclass(frozen=True, slots=True)
class Rendition:
    name: str
    bitrate: str  # video bitrate, or audio bitrate for audio-only
    width: int | None = None
    height: int | None = None

    @property
    def audio_only(self) -> bool:
        return self.height is None


def parse_renditions(spec: str) -> list[Rendition]:
    """`1080p:1920x1080:5000k,720p:1280x720:2800k,audio:128k` -> renditions (highest first)."""
    out: list[Rendition] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        match = _RENDITION.match(item)
        if match is None:
            raise ValueError(f"bad rendition {item!r}: use name:WxH:bitrate or name:bitrate")
        w, h = match["w"], match["h"]
        if w and (int(w) % 2 or int(h) % 2):
            raise ValueError(f"bad rendition {item!r}: H.264 4:2:0 needs an even width and height")
        out.append(
            Rendition(
                name=match["name"],
                bitrate=match["bitrate"],
                width=int(w) if w else None,
                height=int(h) if h else None,
            )
        )
    if not out:
        raise ValueError("no renditions")
    return out


def ffmpeg_command(
    input_url: str,
    out_dir: Path,
    renditions: list[Rendition],
    *,
    segment_seconds: float,
    record: bool,
    preset: str = "veryfast",
    audio_bitrate: str = "128k",
    ffmpeg: str = "ffmpeg",
) -> list[str]:
    videos = [r for r in renditions if not r.audio_only]
    cmd = pull_args(ffmpeg, input_url)
    if videos:
        splits = "".join(f"[s{i}]" for i in range(len(videos)))
        chains = [f"[0:v]split={len(videos)}{splits}"]
        for i, r in enumerate(videos):
            # Exactly the configured size: fit inside it, then pad (letterbox) to it.
            chains.append(
                f"[s{i}]scale={r.width}:{r.height}:force_original_aspect_ratio=decrease"
                f":force_divisible_by=2,pad={r.width}:{r.height}:(ow-iw)/2:(oh-ih)/2,setsar=1[v{i}]"
            )
        cmd += ["-filter_complex", ";".join(chains)]
    stream_map: list[str] = []
    audio_index = 0
    for i, r in enumerate(videos):
        cmd += [
            "-map", f"[v{i}]",
            f"-c:v:{i}", "libx264",
            f"-b:v:{i}", r.bitrate,
            f"-maxrate:v:{i}", r.bitrate,
            f"-bufsize:v:{i}", _double(r.bitrate),
            "-map", "0:a?",
            f"-c:a:{audio_index}", "aac",
            f"-b:a:{audio_index}", audio_bitrate,
        ]  # fmt: skip
        stream_map.append(f"v:{i},a:{audio_index},name:{r.name}")
        audio_index += 1
    for r in renditions:
        if r.audio_only:
            cmd += ["-map", "0:a?", f"-c:a:{audio_index}", "aac", f"-b:a:{audio_index}", r.bitrate]
            stream_map.append(f"a:{audio_index},name:{r.name}")
            audio_index += 1
    flags = "independent_segments+" + ("append_list" if record else "delete_segments")
    cmd += [
        "-preset", preset,
        "-pix_fmt", "yuv420p",
        "-force_key_frames", f"expr:gte(t,n_forced*{segment_seconds})",
        "-sc_threshold", "0",
        "-f", "hls",
        "-hls_time", str(segment_seconds),
        "-hls_list_size", "0" if record else "6",
        "-hls_flags", flags,
        "-hls_segment_filename", str(out_dir / "%v" / "seg_%05d.ts"),
        "-master_pl_name", "master.m3u8",
        "-var_stream_map", " ".join(stream_map),
    ]  # fmt: skip
    if record:
        cmd += ["-hls_playlist_type", "event"]
    cmd.append(str(out_dir / "%v" / "index.m3u8"))
    return cmd


def pull_args(ffmpeg: str, input_url: str) -> list[str]:
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    if input_url.startswith("rtmp"):
        # Our pull announces itself, so the media server's stats do not count it as a viewer.
        cmd += ["-rw_timeout", "10000000", "-rtmp_flashver", INTERNAL_PULL_FLASHVER]
    return [*cmd, "-i", input_url]


def ingest_pull_url(settings: Settings, playback_id: str) -> str:
    """Where the container pulls the ingest: TRANSCODER_INPUT_URL, by default the local media
    server on RTMP_PORT."""
    template = (
        settings.transcoder_input_url
        or f"rtmp://127.0.0.1:{settings.rtmp_port}/live/{{playback_id}}"
    )
    return template.format(playback_id=playback_id)


RECORDER_RENDITION = Rendition(name="source", bitrate="0k")


def recorder_command(
    input_url: str,
    out_dir: Path,
    *,
    segment_seconds: float,
    keep_all: bool = True,
    ffmpeg: str = "ffmpeg",
) -> list[str]:
    """The copy-only recorder (no ladder): the ingest as it is, laid out like a one-rendition
    ladder (`master.m3u8`, `source/index.m3u8`). With `keep_all` (a recording), an EVENT-type
    playlist that keeps every segment, published as VOD the same way as the ladder's; without
    (low-latency packaging only), a sliding live playlist whose old segments are deleted."""
    keep = ["-hls_list_size", "0", "-hls_flags", "independent_segments+append_list",
            "-hls_playlist_type", "event"]  # fmt: skip
    slide = ["-hls_list_size", "6", "-hls_flags", "independent_segments+delete_segments"]
    return [
        *pull_args(ffmpeg, input_url),
        "-map", "0:v?", "-map", "0:a?", "-c", "copy",
        "-f", "hls",
        "-hls_time", str(segment_seconds),
        *(keep if keep_all else slide),
        "-hls_segment_filename", str(out_dir / "%v" / "seg_%05d.ts"),
        "-master_pl_name", "master.m3u8",
        "-var_stream_map", f"v:0,a:0,name:{RECORDER_RENDITION.name}",
        str(out_dir / "%v" / "index.m3u8"),
    ]  # fmt: skip


def _double(bitrate: str) -> str:
    return f"{int(bitrate[:-1]) * 2}k"


class Transcoder:
    """Keeps one ffmpeg running while started: the ingest may not be there yet, or drop and
    come back, so an exited ffmpeg is started again after a pause. The pause backs off while
    the pulls fail (kit.backoff: 0.5 s doubling to 30 s; a media server that is down is not
    asked every two seconds for ever) and starts again from 0.5 s after a run that wrote its
    playlist (it had the stream)."""

    def __init__(
        self,
        command: list[str] | Callable[[], list[str]],
        out_dir: Path,
        renditions: list[Rendition],
        *,
        name: str = "transcoder",
    ) -> None:
        # A callable is asked again for every run (a fresh pull credential each time).
        self.command = command
        self.name = name
        self.out_dir = out_dir
        self.renditions = renditions
        self.process: asyncio.subprocess.Process | None = None
        self.runs = 0
        self.backoff = Backoff()
        self.sleep: Callable[[float], Awaitable[None]] = self._pause  # a test records them
        self._woken = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for r in self.renditions:
            (self.out_dir / r.name).mkdir(exist_ok=True)
        self._task = asyncio.create_task(self._supervise(), name=self.name)

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def wake(self) -> None:
        """The ingest is there again (the event went live): end a back-off pause now."""
        self.backoff.succeeded()
        self._woken.set()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), seconds)
        self._woken.clear()

    def wrote_since(self, started: float) -> bool:
        """Whether a run begun at `started` (time.time()) wrote a rendition's playlist."""
        for rendition in self.renditions:
            with contextlib.suppress(OSError):
                if (self.out_dir / rendition.name / "index.m3u8").stat().st_mtime >= started:
                    return True
        return False

    async def _supervise(self) -> None:
        while not self._stopping:
            started = time.time()
            command = self.command() if callable(self.command) else self.command
            self.process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            self.runs += 1
            stderr = b"" if self.process.stderr is None else await self.process.stderr.read()
            await self.process.wait()
            if self._stopping:
                return
            if self.wrote_since(started):
                self.backoff.succeeded()
            pause = self.backoff.failed()
            log.info(
                f"{self.name}_exited",
                exit_code=self.process.returncode,  # not `code`: the logger redacts that key
                error=stderr.decode(errors="replace")[-300:],
                retry_in=pause,
            )
            await self.sleep(pause)

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Ask ffmpeg to finish (SIGINT: it closes the playlists properly), then kill it."""
        self._stopping = True
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), grace_seconds)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
