"""After a recorded event ends: close its playlists, publish them as an HLS VOD asset and hand
the recording off to the tenant (`recording.ready` webhook)."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.authz.scoping import scoped
from bigfootlive.config import Settings
from bigfootlive.containers.previews import DVR_DIR, POSTER, THUMBNAIL, grab_frame, segments_of
from bigfootlive.containers.storage import Storage, TreeSync, public_url
from bigfootlive.db import utcnow
from bigfootlive.jobs import idempotency
from bigfootlive.models import Event, Recording
from bigfootlive.webhooks import service as webhooks

_EXTINF = re.compile(r"^#EXTINF:([0-9.]+)", re.MULTILINE)


def vod_prefix(event_id: uuid.UUID) -> str:
    return f"vod/{event_id}"


def finalize_playlist(text: str) -> str:
    """A media playlist as VOD: `PLAYLIST-TYPE:VOD` and an `ENDLIST` (ffmpeg writes it on a
    clean stop, not when it was killed)."""
    lines = [line for line in text.splitlines() if line.strip()]
    lines = [
        "#EXT-X-PLAYLIST-TYPE:VOD" if line.startswith("#EXT-X-PLAYLIST-TYPE") else line
        for line in lines
    ]
    if not any(line.startswith("#EXT-X-PLAYLIST-TYPE") for line in lines):
        lines.insert(1, "#EXT-X-PLAYLIST-TYPE:VOD")
    if lines[-1] != "#EXT-X-ENDLIST":
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def duration_of(text: str) -> float:
    return round(sum(float(x) for x in _EXTINF.findall(text)), 3)


def finalize_tree(hls_dir: Path) -> tuple[list[str], float]:
    """Close every rendition's playlist; (renditions with media, longest duration)."""
    if not (hls_dir / "master.m3u8").exists():
        return [], 0.0
    renditions: list[str] = []
    duration = 0.0
    for playlist in sorted(hls_dir.glob("*/index.m3u8")):
        if playlist.parent.name == DVR_DIR:
            continue  # the live rewind window, not a rendition
        text = finalize_playlist(playlist.read_text())
        if "#EXTINF" not in text:
            continue
        playlist.write_text(text)
        renditions.append(playlist.parent.name)
        duration = max(duration, duration_of(text))
    return renditions, duration


async def publish_recording(
    settings: Settings,
    session: AsyncSession,
    storage: Storage,
    *,
    tenant_id: uuid.UUID,
    event_id: uuid.UUID,
    hls_dir: Path,
) -> Recording | None:
    """Upload (or copy) the recorded ladder under `vod/<event id>/`, list it on the event and
    emit `recording.ready`, all in the caller's transaction.

    Idempotent: a second call for the same event returns the existing recording and emits
    nothing; two concurrent calls meet on the `recording:<event id>` key, and the loser's
    transaction (recording and webhook deliveries with it) does not commit."""
    existing = await _recording_of(session, tenant_id, event_id)
    if existing is not None:
        return existing
    renditions, duration = await asyncio.to_thread(finalize_tree, hls_dir)
    if not renditions:
        return None
    if not await idempotency.first_time(session, f"recording:{event_id}"):
        return await _recording_of(session, tenant_id, event_id)
    prefix = vod_prefix(event_id)
    poster = await make_poster(settings, hls_dir, renditions)
    await TreeSync(storage, hls_dir, prefix, skip=(DVR_DIR, THUMBNAIL)).sync()
    poster_url = public_url(settings, f"{prefix}/{POSTER}") if poster else None
    recording = Recording(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        event_id=event_id,
        status="ready",
        storage=storage.kind,
        location=f"{prefix}/master.m3u8",
        playback_url=public_url(settings, f"{prefix}/master.m3u8"),
        duration_seconds=duration,
        renditions=renditions,
        published_at=utcnow(),
        poster_url=poster_url,
    )
    session.add(recording)
    if poster_url is not None:
        stmt = update(Event).where(Event.tenant_id == tenant_id, Event.id == event_id)
        await session.execute(stmt.values(poster_url=poster_url))
    await session.flush()
    await webhooks.emit(session, tenant_id, "recording.ready", recording_ready_payload(recording))
    return recording


async def make_poster(settings: Settings, hls_dir: Path, renditions: list[str]) -> bool:
    """`<hls_dir>/poster.jpg`: the first frame of the first rendition with a picture."""
    for name in renditions:
        segments = segments_of(hls_dir / name / "index.m3u8")
        if segments and await grab_frame(settings.ffmpeg_path, segments[0], hls_dir / POSTER):
            return True
    return False


async def _recording_of(
    session: AsyncSession, tenant_id: uuid.UUID, event_id: uuid.UUID
) -> Recording | None:
    stmt = scoped(select(Recording), Recording, tenant_id).where(Recording.event_id == event_id)
    return (await session.execute(stmt)).scalars().first()


def recording_ready_payload(recording: Recording) -> dict[str, Any]:
    return {
        "recording_id": str(recording.id),
        "event_id": str(recording.event_id),
        "duration_seconds": recording.duration_seconds,
        "playback_url": recording.playback_url,
        "renditions": list(recording.renditions),
        "storage": recording.storage,
        "published_at": recording.published_at.isoformat() if recording.published_at else None,
    }
