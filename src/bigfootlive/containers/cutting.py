"""Cutting a clip: the `containers.tasks.cut_clip` job (clips.py writes the request).

The source is a media playlist on this host: the event's DVR playlist (`<live dir>/dvr/`,
segments stamped with EXT-X-PROGRAM-DATE-TIME, so `start_at`/`end_at` find their segments) or
the first rendition of its published recording (`vod/<event id>/<rendition>/`, by offset). The
segments the clip spans are linked into a scratch directory first (the DVR window deletes its
oldest segments as it slides), then one ffmpeg seeks into them and copies `end - start`
seconds, no re-encode (it starts at the keyframe at or before `start`), into a VOD playlist;
a frame of it is the poster. Published under `vod/<event id>/clips/<clip id>/`. Idempotent:
a clip that is no longer `pending` is left alone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import structlog
from sqlalchemy import select

from bigfootlive.config import Settings
from bigfootlive.containers.clips import clip_prefix
from bigfootlive.containers.previews import DVR_DIR, POSTER, grab_frame
from bigfootlive.containers.storage import TreeSync, hls_dir_for, make_storage, public_url
from bigfootlive.containers.vod import duration_of, vod_prefix
from bigfootlive.db import utcnow
from bigfootlive.models import Clip, Event, Recording
from bigfootlive.state import Infrastructure

log = structlog.get_logger(__name__)


_WAIT_FOR_END_SECONDS = 15


class ClipFailed(Exception):
    """Why a clip could not be cut (kept as its failure_reason)."""


@dataclass(frozen=True, slots=True)
class Segment:
    path: Path
    offset: float  # seconds from the playlist's first segment
    duration: float
    at: dt.datetime | None  # EXT-X-PROGRAM-DATE-TIME


def parse_playlist(playlist: Path) -> list[Segment]:
    try:
        lines = playlist.read_text().splitlines()
    except OSError:
        return []
    out: list[Segment] = []
    offset, duration, at = 0.0, 0.0, None
    for line in (raw.strip() for raw in lines):
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            at = _pdt(line.split(":", 1)[1])
        elif line.startswith("#EXTINF:"):
            duration = float(re.split("[,\\s]", line[8:], maxsplit=1)[0] or 0)
        elif line and not line.startswith("#"):
            out.append(Segment(playlist.parent / line.split("?", 1)[0], offset, duration, at))
            offset += duration
            at = None
    return out


def _pdt(value: str) -> dt.datetime | None:
    """ffmpeg writes `2026-12-02T16:40:01.123+0000`."""
    value = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", value.strip())
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


def span(segments: list[Segment], start: float, end: float) -> tuple[list[Segment], float]:
    """The segments [start, end) (offsets into the playlist) touches, and where start falls
    in the first of them."""
    chosen = [s for s in segments if s.offset + s.duration > start and s.offset < end]
    if (
        not chosen
        or chosen[0].offset > start + 0.5
        or chosen[-1].offset + chosen[-1].duration < end - 0.5
    ):
        raise ClipFailed("the range is no longer (or not yet) in the source playlist")
    return chosen, max(start - chosen[0].offset, 0.0)


def dvr_range(
    segments: list[Segment], start_at: dt.datetime, end_at: dt.datetime
) -> tuple[float, float]:
    """Wall-clock times -> offsets, through the first stamped segment's program date-time."""
    for segment in segments:
        if segment.at is not None:
            start = segment.offset + (start_at - segment.at).total_seconds()
            return start, segment.offset + (end_at - segment.at).total_seconds()
    raise ClipFailed("the DVR playlist has no program date-time")


async def cut(
    settings: Settings, clip: Clip, event: Event, recording: Recording | None, scratch: Path
) -> Path:
    """Cut the clip into `scratch/out`; returns that directory."""
    if clip.source == "dvr":
        if clip.start_at is None or clip.end_at is None:
            raise ClipFailed("a DVR clip needs start_at and end_at")
        playlist = hls_dir_for(settings, event.id, event.playback_id) / DVR_DIR / "index.m3u8"
        for _ in range(_WAIT_FOR_END_SECONDS):  # the last seconds asked for may not be cut yet
            segments = parse_playlist(playlist)
            start, end = dvr_range(segments, clip.start_at, clip.end_at)
            if segments[-1].offset + segments[-1].duration >= end:
                break
            await asyncio.sleep(1)
    else:
        if (
            recording is None
            or not recording.renditions
            or clip.start_seconds is None
            or clip.end_seconds is None
        ):
            raise ClipFailed("the event has no published recording")
        vod = Path(settings.recordings_dir) / vod_prefix(event.id)
        segments = parse_playlist(vod / recording.renditions[0] / "index.m3u8")
        start, end = clip.start_seconds, clip.end_seconds
    chosen, seek = span(segments, start, end)
    source = scratch / "src"
    source.mkdir(parents=True, exist_ok=True)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-PLAYLIST-TYPE:VOD"]
    lines.append(f"#EXT-X-TARGETDURATION:{int(max(s.duration for s in chosen)) + 1}")
    for i, segment in enumerate(chosen):
        name = f"in_{i:05d}.ts"
        try:
            os.link(segment.path, source / name)
        except OSError:
            try:
                shutil.copyfile(segment.path, source / name)
            except OSError as exc:
                raise ClipFailed("a segment of the range is gone from the source") from exc
        lines += [f"#EXTINF:{segment.duration:.6f},", name]
    (source / "index.m3u8").write_text("\n".join([*lines, "#EXT-X-ENDLIST", ""]))
    out = scratch / "out"
    out.mkdir(parents=True, exist_ok=True)
    command = [
        settings.ffmpeg_path, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-ss", f"{seek:.3f}", "-i", str(source / "index.m3u8"), "-t", f"{end - start:.3f}",
        "-map", "0:v?", "-map", "0:a?", "-c", "copy", "-avoid_negative_ts", "make_zero",
        "-f", "hls", "-hls_time", str(settings.transcoder_segment_seconds),
        "-hls_list_size", "0", "-hls_playlist_type", "vod",
        "-hls_segment_filename", str(out / "seg_%05d.ts"), str(out / "index.m3u8"),
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await process.communicate()
    if process.returncode != 0 or not (out / "index.m3u8").is_file():
        raise ClipFailed("ffmpeg could not cut the clip: " + stderr.decode(errors="replace")[-200:])
    shutil.rmtree(source, ignore_errors=True)
    first = parse_playlist(out / "index.m3u8")
    if first:
        await grab_frame(settings.ffmpeg_path, first[0].path, out / POSTER)
    return out


async def cut_clip(state: Infrastructure, clip_id: uuid.UUID) -> None:
    settings = state.settings
    async with state.db.transaction() as session:
        # unscoped: a job of the platform's (its row-level scope is the platform scope)
        clip = await session.get(Clip, clip_id)
        if clip is None or clip.status != "pending":
            return
        event = await session.get(Event, clip.event_id)
        recording = None
        if clip.source == "recording":
            stmt = select(Recording).where(Recording.event_id == clip.event_id)  # unscoped: job
            recording = (
                (await session.execute(stmt.order_by(Recording.created_at.desc())))
                .scalars()
                .first()
            )
    if event is None:
        return
    # a run of its own: a job may run twice at once
    scratch = Path(settings.recordings_dir) / "work" / "clips" / f"{clip_id}-{uuid.uuid4().hex[:8]}"
    values: dict[str, object]
    try:
        out = await cut(settings, clip, event, recording, scratch)
        prefix = clip_prefix(event.id, clip_id)
        await TreeSync(make_storage(settings), out, prefix).sync()
        values = {
            "status": "ready",
            "duration_seconds": duration_of((out / "index.m3u8").read_text()),
            "playback_url": public_url(settings, f"{prefix}/index.m3u8"),
            "poster_url": public_url(settings, f"{prefix}/{POSTER}")
            if (out / POSTER).is_file()
            else None,
            "ready_at": utcnow(),
        }
    except ClipFailed as exc:
        values = {"status": "failed", "failure_reason": str(exc)[:300]}
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, True)
    async with state.db.transaction() as session:
        row = await session.get(Clip, clip_id)  # unscoped: job
        if row is not None and row.status == "pending":  # the first run to finish wins
            for name, value in values.items():
                setattr(row, name, value)
    log.info("clip_cut", clip_id=str(clip_id), status=values["status"])
