"""A stream key never reaches the logs, even at INFO with every callback logged."""

from __future__ import annotations

import logging

import pytest

from tests.fixtures.recorded import payload


@pytest.fixture
def settings_overrides():
    return {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "log_level": "INFO"}


async def test_stream_key_is_not_logged_by_callbacks_or_api(studio, capfd, caplog):
    caplog.set_level(logging.INFO)
    event = await studio.event()
    key = event["ingest"]["stream_key"]
    form = {"content-type": "application/x-www-form-urlencoded"}
    for name in ("publish.form", "update_publish.form", "publish_done.form"):
        response = await studio.client.post(
            "/api/streaming/hooks/nginx-rtmp",
            content=payload("nginx_rtmp", name, client_id="3", stream_key=key),
            headers=form,
            params={"api_key": studio.api_key},
        )
        assert response.status_code in (200, 302)
    await studio.client.get(
        f"/api/streaming/events/{event['id']}/stream", headers=studio.streamer.headers
    )
    out, err = capfd.readouterr()
    # Our own log lines only: the test's HTTP client logs its request URLs (api_key included).
    logged = "\n".join(
        line for line in (out + err).splitlines() if '"logger": "bigfootlive' in line
    ) + "\n".join(str(r.msg) for r in caplog.records if r.name.startswith("bigfootlive"))
    assert "media_callback" in logged  # the callbacks were logged ...
    assert key not in logged  # ... without the key
    assert studio.api_key not in logged
