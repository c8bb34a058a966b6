"""The media server (nginx-rtmp, master and worker) killed with SIGKILL mid-stream: it sends no
unpublish, so the event learns of it from the silence of its `on_update` callbacks
(PUBLISHER_SILENCE_SECONDS) and goes `reconnecting`; the API answers throughout; nginx restarted
and the encoder publishing again take it back to `live`, without restarting the app."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_nginx_rtmp_live import (  # noqa: F401 (fixtures)
    Live,
    _kill,
    _new_live_ready_event,
    _wait_status,
    api_port,
    backend,
    live,
    nginx_base,
    nginx_ports,
)
from tests.fixtures import nginx_rtmp

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

SILENCE = 2.5  # nginx sends on_update every second here (NginxRtmp.update_seconds)


@pytest.fixture
def settings_overrides(api_port, nginx_ports, nginx_base) -> dict[str, Any]:  # noqa: F811
    rtmp_port, http_port = nginx_ports
    return {
        "port": api_port,
        "rtmp_port": rtmp_port,
        "rtmp_ingest_host": "127.0.0.1",
        "media_server": "nginx-rtmp",
        "cdn_base_url": f"http://127.0.0.1:{http_port}",
        "nginx_rtmp_stat_url": f"http://127.0.0.1:{http_port}/stat",
        "reconnect_window_seconds": 60.0,
        "reconnect_sweep_interval_seconds": 0.3,
        "publisher_silence_seconds": SILENCE,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
    }


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (nginx's workers), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry.name))
    return found


def kill_nginx(nginx: nginx_rtmp.NginxRtmp) -> None:
    """SIGKILL to the master we started and to its workers (by pid): nothing is said to anyone."""
    assert nginx.process is not None
    workers = _children(nginx.process.pid)
    nginx.process.kill()
    nginx.process.wait(10)
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def _answers_throughout(live: Live, event_id: str, stop: asyncio.Event) -> list[int]:  # noqa: F811
    codes = []
    while not stop.is_set():
        response = await live.api.get(f"/api/events/{event_id}", headers=live.streamer.headers)
        codes.append(response.status_code)
        await asyncio.sleep(0.1)
    return codes


async def test_media_server_killed_mid_stream_reconnecting_then_live_again(live: Live) -> None:  # noqa: F811
    event = await _new_live_ready_event(live)
    stream = await live.api.get(
        f"/api/streaming/events/{event['id']}/stream", headers=live.streamer.headers
    )
    url = stream.json()["ingest"]["publish_url"]
    encoder = await nginx_rtmp.publish(url, log=live.logs / "ff1.log")
    stop = asyncio.Event()
    watcher = asyncio.create_task(_answers_throughout(live, event["id"], stop))
    again = None
    try:
        await _wait_status(live, event["id"], "live", within=20)
        await asyncio.sleep(SILENCE + 0.5)  # on_update keeps it live past the silence
        assert (await _wait_status(live, event["id"], "live", within=1))["status"] == "live"

        kill_nginx(live.nginx)
        await _kill(encoder)  # its connection is gone; a real encoder retries, as below
        await _wait_status(live, event["id"], "reconnecting", within=SILENCE + 10)

        live.nginx.start()  # same ports, same configuration
        await live.nginx.wait_ready()
        again = await nginx_rtmp.publish(url, log=live.logs / "ff2.log")
        await _wait_status(live, event["id"], "live", within=20)
    finally:
        stop.set()
        codes = await watcher
        await _kill(encoder)
        if again is not None:
            await _kill(again)
    assert set(codes) == {200}, codes  # the API answered while the media server was dead
