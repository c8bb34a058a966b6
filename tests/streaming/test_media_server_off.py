"""MEDIA_SERVER_MODE=none: nothing asks a media server anything. Every URL a media server would
be reached at (nginx's /stat, SRS's API, the ingest the container pulls) points at one local
listener that counts connections; a live, recorded event with its container, the API's
stream health and a stop (which kicks the publisher at SRS) make none there, and log nothing
about it. With MEDIA_SERVER_MODE=external the same steps do reach it (the test can fail)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bigfootlive.containers.worker import EventWorker, health_channel
from tests.fixtures.polling import until
from tests.fixtures.recorded import payload

HOOK = "/api/streaming/hooks/nginx-rtmp"
FORM = {"content-type": "application/x-www-form-urlencoded"}


class Listener:
    """A TCP port that accepts, counts and hangs up: a media server that is not there."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    found = Listener()
    found.server = await asyncio.start_server(found._accept, "127.0.0.1", 0)
    yield found
    found.server.close()
    await found.server.wait_closed()


@pytest.fixture(params=["none", "external"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings_overrides(mode: str, listener: Listener) -> dict[str, Any]:
    there = f"127.0.0.1:{listener.port}"
    return {
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "rtmp_port": listener.port,
        "media_server_mode": mode,
        "media_server": "srs",
        "srs_api_url": f"http://{there}",
        "nginx_rtmp_stat_url": f"http://{there}/stat",
        "transcoder_input_url": f"rtmp://{there}/live/{{playback_id}}",
        "container_health_interval_seconds": 0.2,
        "container_heartbeat_interval_seconds": 0.2,
        "log_level": "INFO",  # the pulls' and probes' failures are logged at INFO and above
    }


async def test_no_pull_or_probe_reaches_a_media_server_in_mode_none(
    studio, state, mode, listener, caplog
):
    event = await studio.event(recording=True)  # a recorder pulls the ingest, previews too
    key = event["ingest"]["stream_key"].rpartition("key=")[2]  # SRS's is `<playback id>?key=`
    published = await studio.client.post(
        HOOK,
        content=payload("nginx_rtmp", "publish.form", client_id="3", stream_key=key),
        headers={**studio.hook_headers, **FORM},
    )
    assert published.status_code == 302, published.text
    reports: list[bytes] = []

    async def on_health(raw: bytes) -> None:
        reports.append(raw)

    unsubscribe = await state.pubsub.subscribe(health_channel(event["id"]), on_health)
    worker = EventWorker(
        state, uuid.UUID(event["id"]), handle="test", measure_process=False, takeover=True
    )
    worker.phase = lambda interval: 0.0
    running = asyncio.create_task(worker.run())
    try:
        await until(lambda: len(reports) >= 3, within=20)  # the health loop ran a while
        health = await studio.client.get(
            f"/api/streaming/events/{event['id']}/health", headers=studio.streamer.headers
        )
        assert health.status_code == 200, health.text
        if mode == "external":  # the control: every way in reaches the "media server"
            await until(lambda: listener.connections >= 4, within=20)
        stopped = await studio.client.post(
            f"/api/events/{event['id']}/stop", headers=studio.streamer.headers
        )
        assert stopped.status_code == 200, stopped.text
    finally:
        worker.stop()
        await asyncio.wait_for(running, 20)
        await unsubscribe()
    logged = caplog.text
    assert "media_callback" in logged  # the log is captured
    if mode == "none":
        assert listener.connections == 0
        assert worker.transcoder is None
        assert worker.previews is None
        assert worker.restreamer is None
        for noise in ("recorder_exited", "dvr_exited", "stream_stats_unavailable",
                      "publisher_kick_failed"):  # fmt: skip
            assert noise not in logged
        assert health.json()["verdict"] == "offline"
    else:
        assert listener.connections >= 4
        assert "stream_stats_unavailable" in logged
