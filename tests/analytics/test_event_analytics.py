"""Analytics figures checked against a scripted viewing session with known numbers."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import uuid

import pytest

from bigfootlive.analytics import service as analytics
from bigfootlive.analytics.ingest import minute_of
from bigfootlive.analytics.tasks import apply_rollup
from bigfootlive.authz.roles import Role
from tests.analytics.conftest import end_event, live_event


def at(base: dt.datetime, seconds: int) -> str:
    return (base + dt.timedelta(seconds=seconds)).isoformat()


async def post(client, event_id, viewer_id, beacons, headers=None):
    return await client.post(
        f"/api/analytics/events/{event_id}/beacons",
        json={"viewer_id": viewer_id, "beacons": beacons},
        headers=headers or {},
    )


async def scripted_session(client, event_id, alice, base):
    """Alice (signed in) and Bob (anonymous) in minute M, all three incl. Carol in M+1."""
    sent = [
        await post(
            client,
            event_id,
            "alice-player-1",
            [
                {"type": "start", "ts": at(base, 0), "startup_ms": 800},
                {
                    "type": "heartbeat",
                    "ts": at(base, 20),
                    "watched_ms": 20000,
                    "bitrate_kbps": 3000,
                },
                {
                    "type": "heartbeat",
                    "ts": at(base, 40),
                    "watched_ms": 20000,
                    "bitrate_kbps": 3000,
                    "rebuffer_ms": 1000,
                    "rebuffer_count": 1,
                },
                {"type": "stop", "ts": at(base, 61), "watched_ms": 20000},
            ],
            alice.headers,
        ),
        await post(
            client,
            event_id,
            "bob-player-1",
            [
                {"type": "start", "ts": at(base, 10), "startup_ms": 1200},
                {
                    "type": "heartbeat",
                    "ts": at(base, 30),
                    "watched_ms": 20000,
                    "bitrate_kbps": 1500,
                },
                {"type": "stop", "ts": at(base, 62), "watched_ms": 20000},
            ],
        ),
        await post(
            client,
            event_id,
            "carol-player-1",
            [
                {"type": "start", "ts": at(base, 65), "startup_ms": 1000},
                {
                    "type": "heartbeat",
                    "ts": at(base, 85),
                    "watched_ms": 20000,
                    "bitrate_kbps": 4500,
                },
            ],
        ),
    ]
    for response in sent:
        assert response.status_code == 202, response.text


async def figures_when(client, event_id, headers, done, within: float = 15.0) -> dict:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        response = await client.get(f"/api/analytics/events/{event_id}", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        if done(body):
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"figures never settled: {body}")
        await asyncio.sleep(0.1)


async def test_scripted_viewing_session_gives_the_known_figures(factory, client, state):
    tenant, streamer, event_id = await live_event(factory, client, state)
    alice = await factory.user(tenant)
    dave = await factory.user(tenant)
    base = minute_of(dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=2)
    await scripted_session(client, event_id, alice, base)
    for _ in range(6):
        await analytics.record_activity(state, uuid.UUID(event_id), tenant.id, "chat")
    await analytics.record_activity(state, uuid.UUID(event_id), tenant.id, "reaction", 2)
    follow = await client.post(f"/api/users/{streamer.id}/follow", headers=dave.headers)
    assert follow.status_code == 200

    body = await figures_when(
        client,
        event_id,
        streamer.headers,
        lambda b: b["viewers"]["unique"] == 3 and b["chat"]["messages"] == 6,
    )
    assert body["viewers"]["peak"] == 3
    assert body["viewers"]["peak_at"].startswith((base + dt.timedelta(minutes=1)).isoformat()[:16])
    assert body["watch_time"] == {"total_seconds": 120.0, "average_seconds": 40.0}
    assert body["reactions"] == 2
    assert body["new_followers"] == 1
    assert body["qoe"] == {
        "avg_startup_ms": 1000.0,
        "rebuffer_ratio": pytest.approx(1000 / 120000),
        "rebuffer_events": 1,
        "avg_bitrate_kbps": 3000.0,
    }
    beacon_minutes = [p for p in body["timeline"] if p["views_started"] or p["watch_seconds"]]
    assert [(p["viewers"], p["views_started"], p["watch_seconds"]) for p in beacon_minutes] == [
        (2, 2, 60.0),
        (3, 1, 60.0),
    ]
    assert body["viewers"]["now"] >= 0


async def test_timeline_exports_as_csv(factory, client, state):
    tenant, streamer, event_id = await live_event(factory, client, state)
    alice = await factory.user(tenant)
    base = minute_of(dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=2)
    await scripted_session(client, event_id, alice, base)
    await figures_when(client, event_id, streamer.headers, lambda b: b["viewers"]["unique"] == 3)
    response = await client.get(
        f"/api/analytics/events/{event_id}/timeline.csv", headers=streamer.headers
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["viewers"], r["views_started"], r["watch_seconds"]) for r in rows] == [
        ("2", "2", "60.000"),
        ("3", "1", "60.000"),
    ]
    assert [r["avg_bitrate_kbps"] for r in rows] == ["2500.0", "4500.0"]  # (3000+3000+1500)/3


async def test_redelivered_rollup_job_is_counted_once(factory, client, state):
    tenant, streamer, event_id = await live_event(factory, client, state)
    minute = minute_of(dt.datetime.now(dt.UTC)).isoformat()
    rollup = {
        "batch": uuid.uuid4().hex,
        "minutes": [
            {
                "event_id": event_id,
                "tenant_id": str(tenant.id),
                "minute": minute,
                "viewers": 1,
                "views_started": 1,
                "views_ended": 0,
                "heartbeats": 1,
                "watch_ms": 15000,
                "rebuffer_ms": 0,
                "rebuffer_events": 0,
                "startup_ms_sum": 500,
                "startup_samples": 1,
                "bitrate_kbps_sum": 0,
                "bitrate_samples": 0,
                "chat_messages": 0,
                "reactions": 0,
            }
        ],
        "viewers": [
            {
                "event_id": event_id,
                "tenant_id": str(tenant.id),
                "viewer": "a:dup-viewer-1",
                "first_seen_at": minute,
                "watch_ms": 15000,
            }
        ],
    }
    message_id = str(uuid.uuid4())
    await state.jobs.enqueue(apply_rollup, message_id=message_id, **rollup)
    await state.jobs.enqueue(apply_rollup, message_id=message_id, **rollup)  # redelivered
    await state.jobs.enqueue(apply_rollup, **rollup)  # or sent twice
    body = await figures_when(
        client, event_id, streamer.headers, lambda b: b["viewers"]["unique"] == 1
    )
    await asyncio.sleep(0.5)
    body = (await client.get(f"/api/analytics/events/{event_id}", headers=streamer.headers)).json()
    assert body["watch_time"]["total_seconds"] == 15.0
    assert body["timeline"][0]["views_started"] == 1


async def test_beacons_are_rate_limited_per_viewer(factory, client, state):
    _, _, event_id = await live_event(factory, client, state)
    beacon = [{"type": "heartbeat", "watched_ms": 1000}]
    codes = [(await post(client, event_id, "greedy-player", beacon)).status_code for _ in range(6)]
    assert codes == [202] * 5 + [429]
    other = await post(client, event_id, "polite-player", beacon)
    assert other.status_code == 202


@pytest.mark.parametrize(
    "payload",
    [
        {"viewer_id": "player-123", "beacons": [{"type": "explode"}]},
        {"viewer_id": "player-123", "beacons": [{"type": "heartbeat", "watched_ms": -5}]},
        {"viewer_id": "player-123", "beacons": [{"type": "heartbeat", "watched_ms": 10**9}]},
        {"viewer_id": "player-123", "beacons": [{"type": "heartbeat"}] * 51},
        {"viewer_id": "no", "beacons": [{"type": "start"}]},
        {"viewer_id": "player-123", "beacons": []},
    ],
)
async def test_invalid_beacons_are_422(factory, client, state, payload):
    _, _, event_id = await live_event(factory, client, state)
    response = await client.post(f"/api/analytics/events/{event_id}/beacons", json=payload)
    assert response.status_code == 422


async def test_anonymous_beacons_for_a_private_event_are_404(factory, client, state):
    _, _, event_id = await live_event(factory, client, state, visibility="private")
    response = await post(client, event_id, "sneaky-player", [{"type": "start"}])
    assert response.status_code == 404


async def test_only_the_owner_and_admins_read_event_analytics(factory, client, state):
    tenant, _, event_id = await live_event(factory, client, state)
    viewer = await factory.user(tenant)
    admin = await factory.user(tenant, role=Role.ADMIN)
    outsider = await factory.user(await factory.tenant(), role=Role.ADMIN)
    url = f"/api/analytics/events/{event_id}"
    assert (await client.get(url, headers=viewer.headers)).status_code == 403
    assert (await client.get(url, headers=admin.headers)).status_code == 200
    assert (await client.get(url, headers=outsider.headers)).status_code == 404


async def test_dashboard_lists_the_streamers_events_with_their_figures(factory, client, state):
    tenant, streamer, event_id = await live_event(factory, client, state)
    alice = await factory.user(tenant)
    base = minute_of(dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=2)
    await scripted_session(client, event_id, alice, base)
    await figures_when(client, event_id, streamer.headers, lambda b: b["viewers"]["unique"] == 3)
    body = (await client.get("/api/analytics/dashboard", headers=streamer.headers)).json()
    [event] = body["events"]
    assert event["event_id"] == event_id
    assert (event["peak_viewers"], event["unique_viewers"], event["watch_seconds"]) == (3, 3, 120.0)
    assert body["last_7_days"]["watch_seconds"] == 120.0
    assert body["last_7_days"]["unique_viewers"] == 3
    assert body["previous_7_days"]["watch_seconds"] == 0


async def test_platform_stats_are_for_platform_admins(factory, client, state):
    tenant, streamer, event_id = await live_event(factory, client, state)
    root = await factory.user(tenant, platform_admin=True)
    await post(client, event_id, "viewer-one-1", [{"type": "start", "startup_ms": 900}])
    seen: list[dict] = []

    async def counted() -> bool:  # viewers are counted by the next flush of the beacon buffer
        response = await client.get("/api/platform/stats", headers=root.headers)
        assert response.status_code == 200
        seen[:] = [response.json()]
        return bool(seen[0]["viewers_now"] == 1)

    for _ in range(100):
        if await counted():
            break
        await asyncio.sleep(0.05)
    stats = seen[0]
    assert stats["tenants"] == 1
    assert stats["users"] == 2
    assert stats["live_events"] == 1
    assert stats["viewers_now"] == 1
    assert "analytics.tasks.apply_rollup" in stats["jobs"]["tasks"]
    assert set(stats["jobs"]["queues"]) == set(state.jobs.queue_names)
    platform = await client.get("/api/analytics/platform", headers=root.headers)
    assert platform.status_code == 200
    assert platform.json()["top_events"][0]["event_id"] == event_id
    assert (await client.get("/api/platform/stats", headers=streamer.headers)).status_code == 403


async def test_ended_event_gets_a_final_summary(factory, client, state):
    from bigfootlive.models import EventSummary

    tenant, streamer, event_id = await live_event(factory, client, state)
    alice = await factory.user(tenant)
    base = minute_of(dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=2)
    await scripted_session(client, event_id, alice, base)
    await figures_when(client, event_id, streamer.headers, lambda b: b["viewers"]["unique"] == 3)
    await end_event(client, streamer, event_id)
    await analytics.finalize(state, uuid.UUID(event_id))  # the job runs it after a delay
    async with state.db.sessionmaker() as session:
        summary = await session.get(EventSummary, uuid.UUID(event_id))
    assert summary is not None
    assert (summary.peak_viewers, summary.unique_viewers, summary.watch_ms) == (3, 3, 120000)
