"""`POST /api/analytics/events/{id}/beacons` answered by `BeaconRoute` (no FastAPI dependency
resolution): what it acknowledges is counted exactly once, bad input is a 4xx JSON error, both
rate limits and the anonymous viewer's admission hold."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from bigfootlive.analytics.schemas import MAX_BEACONS_PER_BATCH
from tests.analytics.conftest import live_event
from tests.analytics.test_beacon_buffer import timeline, wait_for_figures


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "jobs_inprocess_worker": True,
        "jobs_scheduler": False,
        "analytics_flush_seconds": 3600,  # nothing is flushed before the shutdown below
        "analytics_beacon_rate_limit": "1000/minute",
        "analytics_beacon_ip_rate_limit": "4/minute",
    }


def url(event_id: str) -> str:
    return f"/api/analytics/events/{event_id}/beacons"


def batch(viewer: str, n: int) -> dict[str, Any]:
    return {"viewer_id": viewer, "beacons": [{"type": "heartbeat", "watched_ms": 1000}] * n}


async def test_acknowledged_beacons_are_counted_once_after_the_shutdown_flush(
    factory, client, state
):
    """Anonymous and signed-in viewers post concurrently; nothing is flushed until the app's
    shutdown flushes the buffer: the figures are exactly what was acknowledged."""
    tenant, streamer, event_id = await live_event(factory, client, state)
    viewer = await factory.user(tenant)

    async def send(n: int, headers: dict[str, str]) -> int:
        response = await client.post(
            url(event_id), json=batch(f"viewer-{n:04d}", 3), headers=headers
        )
        assert response.status_code == 202, response.text
        assert response.headers["content-type"] == "application/json"
        accepted: int = response.json()["accepted"]
        return accepted

    acknowledged = await asyncio.gather(
        *(send(n, viewer.headers if n % 3 == 0 else {}) for n in range(3))
    )
    assert acknowledged == [3, 3, 3]
    assert await timeline(client, streamer, event_id) == []  # still in the buffer
    await state.beacons.stop()  # what the lifespan does at shutdown
    await wait_for_figures(client, streamer, event_id, watch_seconds=9)
    await asyncio.sleep(0.3)  # a second roll-up of the same sums would land by now
    points = await timeline(client, streamer, event_id)
    assert sum(p["watch_seconds"] for p in points) == 9
    figures = await client.get(f"/api/analytics/events/{event_id}", headers=streamer.headers)
    assert figures.json()["viewers"]["unique"] == 3  # two anonymous ids, one signed-in user
    assert state.beacons.take() == {}


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b'{"viewer_id": "player-123", "beacons": [', {}, 400, "malformed_json"),
        (b"[" * 10_000, {}, 400, "malformed_json"),
        (b"", {}, 422, "validation_error"),
        (b'{"viewer_id": "player-123", "beacons": [{"type": "start"}]}',
         {"content-type": "text/plain"}, 422, "validation_error"),
        (b'{"viewer_id": "player-123", "beacons": [{"type": "explode"}]}', {}, 422,
         "validation_error"),
        (b'{"viewer_id": "player-123", "beacons": [{"type": "start"}]}',
         {"authorization": "Bearer not-a-token"}, 401, None),
    ],
    ids=["truncated", "nested-too-deep", "empty", "not-json", "unknown-type", "bad-token"],
)  # fmt: skip
async def test_bad_input_is_a_4xx_json_error(factory, client, state, body, headers, status, code):
    _, _, event_id = await live_event(factory, client, state)
    response = await client.post(
        url(event_id), content=body, headers={"content-type": "application/json", **headers}
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    if status == 422:
        assert error["errors"][0]["loc"][0] == "body"


async def test_a_batch_holds_at_most_the_documented_number_of_beacons(factory, client, state):
    _, _, event_id = await live_event(factory, client, state)
    full = await client.post(url(event_id), json=batch("player-123", MAX_BEACONS_PER_BATCH))
    assert full.status_code == 202, full.text
    assert full.json() == {"accepted": MAX_BEACONS_PER_BATCH}
    over = await client.post(url(event_id), json=batch("player-124", MAX_BEACONS_PER_BATCH + 1))
    assert over.status_code == 422, over.text
    assert over.json()["error"]["code"] == "validation_error"
    assert over.json()["error"]["errors"][0]["loc"] == ["body", "beacons"]


async def test_a_malformed_event_id_is_422_and_an_unknown_one_404(client):
    response = await client.post(url("not-a-uuid"), json=batch("player-123", 1))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["errors"][0]["loc"] == ["path", "event_id"]
    response = await client.post(url(str(uuid.uuid4())), json=batch("player-123", 1))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "event_not_found"


async def test_the_per_address_limit_holds_across_viewers(factory, client, state):
    _, _, event_id = await live_event(factory, client, state)
    codes = [
        (await client.post(url(event_id), json=batch(f"player-{n:04d}", 1))).status_code
        for n in range(5)
    ]
    assert codes == [202] * 4 + [429]
    refused = await client.post(url(event_id), json=batch("player-9999", 1))
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1


async def test_anonymous_viewers_are_not_admitted_to_a_tenant_only_event(factory, client, state):
    tenant, _, event_id = await live_event(factory, client, state, visibility="tenant")
    anonymous = await client.post(url(event_id), json=batch("player-123", 1))
    assert anonymous.status_code == 404
    member = await factory.user(tenant)
    admitted = await client.post(url(event_id), json=batch("player-123", 1), headers=member.headers)
    assert admitted.status_code == 202, admitted.text
