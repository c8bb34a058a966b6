"""The container's pull of the ingest (transcoder, recorder, DVR copy) backs off while it fails:
0.5 s doubling to 30 s, from 0.5 s again after a run that wrote its playlist; the event going
live ends a pause at once. Real processes, the pauses recorded instead of slept."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bigfootlive.containers.transcoder import Rendition, Transcoder
from bigfootlive.kit.backoff import Backoff
from tests.fixtures.polling import until

FAIL = [sys.executable, "-c", "raise SystemExit(1)"]  # a pull the media server refused


def _wrote(out_dir: Path) -> list[str]:
    """A pull that had the stream: it wrote its playlist, then the stream went away."""
    playlist = out_dir / "r" / "index.m3u8"
    return [sys.executable, "-c", f"open({str(playlist)!r}, 'w').write('#EXTM3U'); exit(1)"]


async def _pauses(transcoder: Transcoder, count: int) -> list[float]:
    pauses: list[float] = []
    enough = asyncio.Event()

    async def record(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) >= count:
            enough.set()
            await asyncio.Event().wait()  # parked until stop()

    transcoder.sleep = record
    transcoder.start()
    try:
        await asyncio.wait_for(enough.wait(), 30)
    finally:
        await transcoder.stop(grace_seconds=1)
    return pauses


async def test_failing_pulls_back_off_to_thirty_seconds(tmp_path):
    transcoder = Transcoder(FAIL, tmp_path, [Rendition("r", "0k")])
    assert await _pauses(transcoder, 9) == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


async def test_a_run_that_had_the_stream_starts_the_back_off_again(tmp_path):
    commands = [FAIL, FAIL, FAIL, _wrote(tmp_path), FAIL, FAIL]
    transcoder = Transcoder(lambda: commands.pop(0), tmp_path, [Rendition("r", "0k")])
    assert await _pauses(transcoder, 6) == [0.5, 1.0, 2.0, 0.5, 1.0, 2.0]


async def test_going_live_ends_the_pause_at_once(tmp_path):
    transcoder = Transcoder(FAIL, tmp_path, [Rendition("r", "0k")])
    transcoder.backoff = Backoff(first=3600.0)  # would wait an hour
    transcoder.start()
    try:
        await until(lambda: transcoder.runs == 1 and transcoder.backoff.failing)
        transcoder.wake()  # the worker heard the event go live
        await until(lambda: transcoder.runs == 2, within=10)
    finally:
        await transcoder.stop(grace_seconds=1)
