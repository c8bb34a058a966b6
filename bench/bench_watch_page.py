"""The watch page: time from navigation to the first video frame, against a bare page with
hls.js playing the same stream in the same run; and the server's answer time for the watch
page against a template page with no database read (`/signin`), through the same stack.

A real `bigfootlive serve` (SQLite, managed nginx-rtmp), one ffmpeg encoder on a public event,
Debian's chromium driven by Playwright. Each round opens a fresh browser context for each page,
alternating which goes first; single rounds swing by 150 ms either way on this machine, so the
default is 21 rounds (about 2.5 minutes). Prints one JSON document on stdout (logs on stderr).

    .venv/bin/python -m bench.bench_watch_page [--rounds 21] [--requests 300]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench import summary
from bigfootlive.observability.middleware import SECURITY_HEADERS
from bigfootlive.web.assets import STATIC_DIR, vendor_file
from bigfootlive.web.security import origin_of, policy_with_media

FIRST_FRAME = """
window.__bflFirstFrame = null;
document.addEventListener('playing', () => {
  if (window.__bflFirstFrame === null) window.__bflFirstFrame = performance.now();
}, true);
"""


def _bare_page() -> str:
    # its script a file of its own: the pages' CSP allows no inline script
    return """<!doctype html><html><body><video id="v" muted playsinline></video>
<script type="module" src="./play.mjs"></script></body></html>"""


def _bare_script(hls_url: str) -> str:
    return f"""import Hls from './hls.mjs';
const v = document.getElementById('v');
const hls = new Hls({{enableWorker: false}});
hls.on(Hls.Events.MANIFEST_PARSED, () => v.play());
hls.loadSource({json.dumps(hls_url)});
hls.attachMedia(v);
"""


class _Quiet(SimpleHTTPRequestHandler):
    """Serves the bare page with the headers the platform gives its pages (the request
    middleware's security headers, the pages' CSP and referrer policy): the two pages differ
    in what they are, not in how they are served. Without them the bare page skipped the
    renderer-process switch that `Cross-Origin-Opener-Policy` makes a fresh tab do (~90 ms
    of the watch page's first frame on this machine)."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript"}
    page_headers: dict[str, str] = {}

    def end_headers(self) -> None:
        for name, value in self.page_headers.items():
            self.send_header(name, value)
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _first_frame(context: Any, url: str) -> float:
    page = context.new_page()
    page.add_init_script(FIRST_FRAME)
    page.goto(url)
    page.wait_for_function("() => window.__bflFirstFrame !== null", timeout=60_000)
    value = float(page.evaluate("window.__bflFirstFrame"))
    page.close()
    return value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    # the provisioning's log lines go to stderr: stdout carries the JSON document only
    with contextlib.redirect_stdout(sys.stderr):
        figures = _measure(args)
    print(json.dumps(figures, indent=2))


def _measure(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright
    from tests.fixtures import browser as b

    hls_module = (STATIC_DIR / vendor_file("hls.js")).read_bytes()
    with tempfile.TemporaryDirectory() as tmp, b.serve(Path(tmp)) as site:
        event = site.event("sam", "Bench", "public", live=True)
        hls_url = event["stream"]["hls_url"]
        watch_url = f"{site.base}/watch/{event['id']}"
        # wait until the playlist has a few segments, so both pages start from the same state
        b.wait_for(lambda: site.api.get(hls_url).text.count(".ts") >= 3, 60)
        # the bare page: a static file server of its own on loopback (a page the browser
        # fulfils itself counts as public and may not reach the loopback media origin)
        bare_dir = Path(tmp) / "bare"
        bare_dir.mkdir()
        (bare_dir / "index.html").write_text(_bare_page())
        (bare_dir / "play.mjs").write_text(_bare_script(hls_url))
        (bare_dir / "hls.mjs").write_bytes(hls_module)
        served = {k.decode(): v.decode() for k, v in SECURITY_HEADERS}
        served.update({
            "content-security-policy": policy_with_media(origin_of(hls_url)),
            "referrer-policy": "same-origin",
        })  # fmt: skip
        _Quiet.page_headers = served
        handler = functools.partial(_Quiet, directory=str(bare_dir))
        files = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=files.serve_forever, daemon=True).start()
        bare_url = f"http://127.0.0.1:{files.server_address[1]}/"
        watch: list[float] = []
        bare: list[float] = []
        with sync_playwright() as playwright:
            chromium = b.launch(playwright)

            for index in range(args.rounds):
                order = ("watch", "bare") if index % 2 == 0 else ("bare", "watch")
                for which in order:
                    context = chromium.new_context()
                    if which == "bare":
                        bare.append(_first_frame(context, bare_url))
                    else:
                        watch.append(_first_frame(context, watch_url))
                    context.close()
            chromium.close()
        files.shutdown()
        render = _answer_times(site, f"/watch/{event['id']}", args.requests)
        template = _answer_times(site, "/signin", args.requests)
    watch_ms, bare_ms = statistics.median(watch), statistics.median(bare)
    return {
        "benchmark": "watch_page",
        "rounds": args.rounds,
        "first_frame_ms": {
            "watch_page_median": round(watch_ms, 1),
            "bare_hls_page_median": round(bare_ms, 1),
            "ratio": round(watch_ms / bare_ms, 3),
            "watch_page_all": [round(v, 1) for v in watch],
            "bare_hls_page_all": [round(v, 1) for v in bare],
            "target_ratio": 1.3,
        },
        "server_answer_ms": {
            "requests": args.requests,
            "watch_page_median": render["median"],
            "watch_page_p95": render["p95"],
            "template_page_median": template["median"],
            "template_page_p95": template["p95"],
            "ratio": round(render["median"] / template["median"], 3),
        },
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "targets": [
            summary.target(
                "first frame, watch page vs bare hls.js page",
                watch_ms / bare_ms,
                1.3,
                better="lower",
                detail=f"{watch_ms:,.0f} vs {bare_ms:,.0f} ms, medians of {args.rounds} rounds",
            )
        ],
    }


def _answer_times(site: Any, path: str, count: int) -> dict[str, float]:
    headers = {"accept": "text/html"}
    for _ in range(20):  # warm-up
        site.api.get(path, headers=headers)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        answer = site.api.get(path, headers=headers)
        times.append((time.perf_counter() - start) * 1000)
        assert answer.status_code == 200, answer.status_code
    times.sort()
    return {
        "median": round(statistics.median(times), 2),
        "p95": round(times[int(len(times) * 0.95) - 1], 2),
    }


if __name__ == "__main__":
    main()
