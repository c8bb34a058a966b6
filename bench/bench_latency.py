"""Glass-to-glass latency per latency mode: the encoder's clock burnt into the picture, read
back from the frames the watch page's player presents at its default live offset.

A real `bigfootlive serve` (SQLite, managed nginx-rtmp), Debian's chromium driven by Playwright
on the event's watch page (the player settings of the event's mode), one event per mode, each
with its own encoder. The encoder is this process: it paints the wall clock (milliseconds, 24
bits, and an 8-bit checksum) as 32 black or white blocks into each 320x180 frame and pipes the
frames to ffmpeg (x264, zerolatency, the keyframe interval the studio recommends for the mode),
which publishes to the ingest. In the page, each presented frame (`requestVideoFrameCallback`)
is drawn on a canvas, its blocks read, and the latency is the frame's display time minus the
clock it carries. Same machine, same clock: no synchronisation error.

`ultra_low` is measured only where the deployment supports it (MediaMTX or SRS, run by the
operator); on the managed nginx-rtmp the API refuses it, and the report says so.

    .venv/bin/python -m bench.bench_latency [--seconds 60] [--warmup 15] [--modes normal,low]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from bench.summary import target

WIDTH, HEIGHT, FPS = 320, 180, 25
COLUMNS, ROWS = 8, 4  # 24 bits of milliseconds, then 8 bits of checksum
CLOCK_BITS = 24
CLOCK_MOD = 1 << CLOCK_BITS
BLACK, WHITE = 16, 235
# keyframe interval per mode, as the studio's encoder settings recommend
GOP_SECONDS = {"normal": 2.0, "low": 1.0, "ultra_low": 0.5}
TARGETS = {"normal": 10_000.0, "low": 4_000.0, "ultra_low": 1_000.0}


def _bits(value: int) -> list[int]:
    payload = [(value >> (CLOCK_BITS - 1 - i)) & 1 for i in range(CLOCK_BITS)]
    checksum = ((value >> 16) + (value >> 8) + value) & 0xFF
    return payload + [(checksum >> (7 - i)) & 1 for i in range(8)]


def frame(clock_ms: int) -> bytes:
    """One grey (8-bit luma) frame with `clock_ms % 2**24` painted as blocks."""
    bits = _bits(clock_ms % CLOCK_MOD)
    block_w, block_h = WIDTH // COLUMNS, HEIGHT // ROWS
    rows = []
    for row in range(ROWS):
        line = b"".join(
            bytes([WHITE if bits[row * COLUMNS + col] else BLACK]) * block_w
            for col in range(COLUMNS)
        )
        rows.append(line * block_h)
    return b"".join(rows)


def decode(bits: list[int]) -> int | None:
    """The clock a frame carries, or None when its checksum does not match (a torn read)."""
    value = 0
    for bit in bits[:CLOCK_BITS]:
        value = (value << 1) | bit
    checksum = 0
    for bit in bits[CLOCK_BITS:]:
        checksum = (checksum << 1) | bit
    return value if checksum == ((value >> 16) + (value >> 8) + value) & 0xFF else None


class ClockEncoder:
    """Paints the clock at FPS frames a second into ffmpeg's stdin, which publishes to `url`."""

    def __init__(self, url: str, gop_seconds: float, log: Path) -> None:
        gop = max(1, round(gop_seconds * FPS))
        args = [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
            "-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS),
            "-i", "pipe:0",
            "-f", "lavfi", "-i", "anullsrc=sample_rate=44100:channel_layout=mono",
            "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
            "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
            "-pix_fmt", "yuv420p", "-b:v", "400k", "-c:a", "aac", "-b:a", "32k",
            "-f", "flv", url,
        ]  # fmt: skip
        self._log = log.open("ab")
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stderr=self._log)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._paint, daemon=True)
        self._thread.start()

    def _paint(self) -> None:
        assert self.process.stdin is not None
        start = time.monotonic()
        index = 0
        while not self._stop.is_set():
            due = start + index / FPS
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                self.process.stdin.write(frame(int(time.time() * 1000)))
                self.process.stdin.flush()
            except (BrokenPipeError, ValueError):
                return
            index += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        with contextlib.suppress(BrokenPipeError, OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


# Runs in the page: reads the blocks of each presented frame; keeps (display epoch ms, bits).
READER = """
([columns, rows]) => {
  const video = document.querySelector('video');
  const canvas = document.createElement('canvas');
  const context = canvas.getContext('2d', { willReadFrequently: true });
  window.__bflSamples = [];
  const onFrame = (now, meta) => {
    const w = meta.width, h = meta.height;
    if (w && h) {
      canvas.width = w; canvas.height = h;
      context.drawImage(video, 0, 0, w, h);
      const pixels = context.getImageData(0, 0, w, h).data;
      const bits = [];
      for (let row = 0; row < rows; row++) {
        for (let col = 0; col < columns; col++) {
          const x = Math.floor((col + 0.5) * w / columns), y = Math.floor((row + 0.5) * h / rows);
          bits.push(pixels[(y * w + x) * 4] > 128 ? 1 : 0);
        }
      }
      const shown = performance.timeOrigin + meta.expectedDisplayTime;
      window.__bflSamples.push([shown, bits]);
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}
"""


def _latencies(samples: list[list[Any]]) -> tuple[list[float], int]:
    values, torn = [], 0
    for shown, bits in samples:
        clock = decode(bits)
        if clock is None:
            torn += 1
            continue
        values.append(((int(shown) - clock) % CLOCK_MOD) * 1.0)
    return values, torn


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


@contextlib.contextmanager
def _live_event(site: Any, mode: str) -> Iterator[dict[str, Any]]:
    created = site.api.post(
        "/api/events",
        json={"title": f"Latency {mode}", "visibility": "public", "latency_mode": mode},
        headers=site.bearer("sam"),
    )
    if created.status_code != 201:
        yield {"refused": created.json()}
        return
    event: dict[str, Any] = created.json()
    started = site.api.post(f"/api/events/{event['id']}/start", headers=site.bearer("sam"))
    assert started.status_code == 200, started.text
    stream = site.api.get(
        f"/api/streaming/events/{event['id']}/stream", headers=site.bearer("sam")
    ).json()
    encoder = ClockEncoder(
        stream["ingest"]["publish_url"], GOP_SECONDS[mode], site.tmp / f"encoder-{mode}.log"
    )
    try:
        yield {**event, "stream": stream}
    finally:
        encoder.close()
        site.api.post(f"/api/events/{event['id']}/end", headers=site.bearer("sam"))


def _segments(site: Any, url: str) -> int:
    """Segments in the playlist at `url` (its first variant's, for a master playlist)."""
    text = site.api.get(url).text
    if "#EXT-X-STREAM-INF" in text:
        variant = next(line for line in text.splitlines() if line and not line.startswith("#"))
        text = site.api.get(urljoin(url, variant)).text
    return text.count("#EXTINF")


def _measure(site: Any, chromium: Any, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    from tests.fixtures import browser as b

    with _live_event(site, mode) as event:
        if "refused" in event:
            return {"mode": mode, "supported": False, "refused": event["refused"]["error"]}
        b.wait_for(lambda: _segments(site, event["stream"]["hls_url"]) >= 3, 60)
        context = chromium.new_context()
        page = context.new_page()
        page.goto(f"{site.base}/watch/{event['id']}")
        page.wait_for_function(
            "() => document.querySelector('video')?.currentTime > 0", timeout=60_000
        )
        page.wait_for_timeout(args.warmup * 1000)  # the player settles at its live offset
        page.evaluate(READER, [COLUMNS, ROWS])
        page.wait_for_timeout(args.seconds * 1000)
        samples = page.evaluate("window.__bflSamples")
        context.close()
    values, torn = _latencies(samples)
    assert values, f"no readable frame in {len(samples)} samples"
    median = statistics.median(values)
    return {
        "mode": mode,
        "supported": True,
        "frames_read": len(values),
        "frames_torn": torn,
        "median_ms": round(median, 1),
        "p95_ms": round(_percentile(values, 0.95), 1),
        "min_ms": round(min(values), 1),
        "max_ms": round(max(values), 1),
        "player": event["stream"].get("player"),
    }


def _target_row(result: dict[str, Any]) -> dict[str, Any]:
    mode = result["mode"]
    name = f"glass-to-glass {mode}, median"
    if not result["supported"]:
        why = result["refused"].get("code", "refused")
        return target(name, None, TARGETS[mode], unit="ms", better="lower", detail=why)
    detail = f"p95 {result['p95_ms']:.0f} ms, {result['frames_read']} frames"
    return target(
        name, result["median_ms"], TARGETS[mode], unit="ms", better="lower", detail=detail
    )


def main() -> None:
    from playwright.sync_api import sync_playwright
    from tests.fixtures import browser as b

    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=15)
    parser.add_argument("--modes", default="normal,low,ultra_low")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp, b.serve(Path(tmp)) as site:
        with sync_playwright() as playwright:
            chromium = b.launch(playwright)
            for mode in args.modes.split(","):
                results.append(_measure(site, chromium, mode, args))
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)  # progress
            chromium.close()
    print(
        json.dumps(
            {
                "benchmark": "latency",
                "seconds": args.seconds,
                "modes": results,
                "targets": [_target_row(result) for result in results],
                "load_average": [round(v, 2) for v in os.getloadavg()],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
