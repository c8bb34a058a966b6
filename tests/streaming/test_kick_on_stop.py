"""Stopping an event drops its publisher at SRS (HTTP API) and MediaMTX (control API v3).

The media servers are small HTTP servers on 127.0.0.1 answering with the documented payloads
(tests/fixtures/payloads/<vendor>/); the tests assert which endpoints we call, for which
connection."""

from __future__ import annotations

import uuid

import pytest

from tests.fixtures.control_api import ControlApi
from tests.fixtures.recorded import payload

BASE = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "rtmp_port": 19999}


@pytest.fixture
def control_api():
    with ControlApi().running() as api:
        yield api


def _key(event) -> str:
    """The stream key alone (SRS and MediaMTX ingest shows `<playback id>?key=<key>`)."""
    return str(event["ingest"]["stream_key"]).rsplit("?key=", 1)[-1]


async def _stop(studio, event) -> None:
    stopped = await studio.client.post(
        f"/api/events/{event['id']}/stop", headers=studio.streamer.headers
    )
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "ended"


class TestSrs:
    @pytest.fixture
    def settings_overrides(self, control_api):
        return {**BASE, "media_server": "srs", "srs_api_url": control_api.url}

    async def _live(self, studio, client_id):
        event = await studio.event()
        published = await studio.client.post(
            "/api/streaming/hooks/srs",
            content=payload(
                "srs",
                "on_publish.json",
                client_id=client_id,
                playback_id=event["playback_id"],
                stream_key=_key(event),
            ),
            headers={**studio.hook_headers, "content-type": "application/json"},
        )
        assert published.status_code == 200, published.text
        assert published.text == "0"
        return event

    async def test_stop_deletes_the_streams_publisher_and_nobody_else(self, studio, control_api):
        event = await self._live(studio, "3ri51j84")
        other = await studio.event()
        control_api.answer(
            "GET",
            "/api/v1/clients",
            200,
            payload(
                "srs",
                "clients.json",
                client_id="3ri51j84",
                player_id="9k2m1x0p",
                other_id="7v0q5w2z",
                playback_id=event["playback_id"],
                other_playback_id=other["playback_id"],
            ),
        )
        control_api.answer(
            "DELETE", "/api/v1/clients/3ri51j84", 200, payload("srs", "client_deleted.json")
        )

        await _stop(studio, event)

        assert control_api.paths() == ["/api/v1/clients", "/api/v1/clients/3ri51j84"]
        assert [m for m, _, _ in control_api.calls] == ["GET", "DELETE"]
        assert "count=" in control_api.calls[0][2]  # SRS lists only 10 clients unless asked

    async def test_an_unreachable_api_does_not_fail_the_stop(self, studio, control_api):
        event = await self._live(studio, "c1")
        control_api.answer("GET", "/api/v1/clients", 500, "oops")
        await _stop(studio, event)
        assert control_api.paths("DELETE") == []

    async def test_stopping_an_event_that_never_went_on_air_calls_nothing(
        self, studio, control_api
    ):
        event = await studio.event()
        await _stop(studio, event)
        assert control_api.calls == []


class TestMediaMtx:
    @pytest.fixture
    def settings_overrides(self, control_api):
        return {**BASE, "media_server": "mediamtx", "mediamtx_api_url": control_api.url}

    async def _live(self, studio, conn_id):
        event = await studio.event()
        published = await studio.client.post(
            "/api/streaming/hooks/mediamtx",
            content=payload(
                "mediamtx",
                "publish.json",
                client_id=conn_id,
                playback_id=event["playback_id"],
                stream_key=_key(event),
            ),
            headers={**studio.hook_headers, "content-type": "application/json"},
        )
        assert published.status_code == 200
        return event

    @pytest.mark.parametrize(
        ("source_type", "collection"),
        [("rtmpConn", "rtmpconns"), ("srtConn", "srtconns"), ("webRTCSession", "webrtcsessions")],
    )
    async def test_stop_kicks_the_paths_source(self, studio, control_api, source_type, collection):
        conn = str(uuid.uuid4())
        event = await self._live(studio, conn)
        path = f"/v3/paths/get/live/{event['playback_id']}"
        control_api.answer(
            "GET",
            path,
            200,
            payload(
                "mediamtx",
                "path_get.json",
                playback_id=event["playback_id"],
                source_type=source_type,
                source_id=conn,
            ),
        )
        control_api.answer("POST", f"/v3/{collection}/kick/{conn}", 200)

        await _stop(studio, event)

        assert control_api.calls == [
            ("GET", path, ""),
            ("POST", f"/v3/{collection}/kick/{conn}", ""),
        ]

    async def test_a_path_nobody_publishes_is_left_alone(self, studio, control_api):
        event = await self._live(studio, str(uuid.uuid4()))
        path = f"/v3/paths/get/live/{event['playback_id']}"
        control_api.answer("GET", path, 404, payload("mediamtx", "path_not_found.json"))
        await _stop(studio, event)
        assert control_api.paths() == [path]
