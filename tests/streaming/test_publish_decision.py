"""The publish decision on its fast path (cache snapshot + one UPDATE) keeps every guarantee:
a changed key or a finished event is refused at once, and a go-live that has webhooks or
followers to serve still records them in the transaction that made the event live."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from bigfootlive.events import repository as repo
from bigfootlive.events.schemas import EventStatus
from bigfootlive.models import WebhookDelivery
from bigfootlive.notifications.service import FAN_OUT_EVENT_LIVE_TASK
from bigfootlive.row_security import RowScope, row_scope
from tests.fixtures.recorded import payload

HOOK = "/api/streaming/hooks/nginx-rtmp"
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # tests/streaming/conftest.py's, and a webhook endpoint on loopback (never called here)
    return {
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "rtmp_port": 19999,
        "webhook_allow_private_networks": True,
    }


async def _call(studio, name, **values):
    return await studio.client.post(
        HOOK, content=payload("nginx_rtmp", name, **values), headers={**studio.hook_headers, **FORM}
    )


async def _publish(studio, key, client_id):
    return (await _call(studio, "publish.form", client_id=client_id, stream_key=key)).status_code


async def test_a_stopped_event_refuses_the_next_publish_at_once(studio):
    event = await studio.event()
    key = event["ingest"]["stream_key"]
    assert await _publish(studio, key, "1") == 302  # the live snapshot is now in the cache
    done = await _call(studio, "publish_done.form", client_id="1", stream_key=key)
    assert done.status_code == 200
    stopped = await studio.client.post(
        f"/api/events/{event['id']}/stop", headers=studio.streamer.headers
    )
    assert stopped.status_code == 200, stopped.text
    assert await _publish(studio, key, "2") == 403
    assert await studio.status(event) == "ended"


async def test_a_cancelled_event_refuses_a_publish_at_once(studio):
    event = await studio.event()
    key = event["ingest"]["stream_key"]
    # the armed (`ready`) snapshot is now in the cache
    alive = await _call(studio, "update_publish.form", client_id="1", stream_key=key)
    assert alive.status_code == 403
    cancelled = await studio.client.delete(
        f"/api/events/{event['id']}", headers=studio.streamer.headers
    )
    assert cancelled.status_code < 300, cancelled.text
    assert await _publish(studio, key, "1") == 403
    assert await studio.status(event) == "cancelled"


async def test_a_key_rotated_while_live_is_refused_at_once(studio):
    event = await studio.event()
    old = event["ingest"]["stream_key"]
    assert await _publish(studio, old, "1") == 302  # the live snapshot is now in the cache
    rotated = await studio.client.post(
        f"/api/events/{event['id']}/stream-key", headers=studio.streamer.headers
    )
    assert rotated.status_code == 200, rotated.text
    assert await _publish(studio, old, "2") == 403


async def test_a_second_publisher_is_refused_while_the_first_is_live(studio):
    event = await studio.event()
    key = event["ingest"]["stream_key"]
    assert await _publish(studio, key, "1") == 302
    assert await _publish(studio, key, "2") == 403
    assert await _publish(studio, key, "1") == 302  # the first one's retried callback


async def test_go_live_records_the_webhook_delivery_with_the_change(studio, state):
    endpoint = await studio.client.post(
        "/api/webhooks/endpoints",
        json={"url": "http://127.0.0.1:9/live", "event_types": ["event.live"]},
        headers=studio.admin.headers,
    )
    assert endpoint.status_code == 201, endpoint.text
    event = await studio.event()
    assert await _publish(studio, event["ingest"]["stream_key"], "1") == 302
    assert await studio.status(event) == "live"
    stmt = select(func.count()).where(WebhookDelivery.event_type == "event.live")
    async with state.db.transaction() as session:
        count = (await session.execute(stmt)).scalar_one()
    assert count == 1


async def _fan_outs(state) -> int:
    return (await state.jobs.counters())[FAN_OUT_EVENT_LIVE_TASK]["enqueued"]


async def test_go_live_notifies_followers_only_when_there_are_some(studio, state):
    quiet = await studio.event()
    assert await _publish(studio, quiet["ingest"]["stream_key"], "1") == 302
    assert await _fan_outs(state) == 0  # nobody follows the streamer: no job at all
    followed = await studio.client.post(
        f"/api/users/{studio.streamer.user.id}/follow", headers=studio.viewer.headers
    )
    assert followed.status_code == 200, followed.text
    event = await studio.event()
    assert await _publish(studio, event["ingest"]["stream_key"], "2") == 302
    assert await studio.status(event) == "live"
    assert await _fan_outs(state) == 1


async def test_the_one_round_trip_go_live_stays_inside_the_callers_row_scope(studio, state):
    if state.db.engine.dialect.name != "postgresql":
        pytest.skip("row-level security is PostgreSQL's")
    event = await studio.event()
    event_id, tenant_id = uuid.UUID(event["id"]), uuid.UUID(event["tenant_id"])
    go = {"tenant_id": tenant_id, "event_id": event_id, "expected": EventStatus.READY}
    with row_scope(RowScope(tenant_id=uuid.uuid4())):  # another tenant's scope: walled off
        assert await repo.go_live(state.db, publisher_id="1", **go) is None
    assert await studio.status(event) == "ready"
    with row_scope(RowScope(tenant_id=tenant_id)):
        moved = await repo.go_live(state.db, publisher_id="1", **go)
    assert moved is not None
    assert (moved.status, moved.publisher_id) == ("live", "1")
    assert await studio.status(event) == "live"


async def test_a_publish_and_its_retries_make_no_database_session(studio, state, monkeypatch):
    """A first publish with no webhook or follower to serve is one statement committed on its
    own, and the media server's retries (same key, same client id) are allowed from the cache's
    live snapshot: neither makes an ORM session. The event is live, a second publisher is
    still refused."""
    warm = await studio.event()  # the API key's cache entry is read once from the database
    assert await _publish(studio, warm["ingest"]["stream_key"], "0") == 302
    event = await studio.event()
    key = event["ingest"]["stream_key"]
    made: list[object] = []
    sessionmaker = state.db.sessionmaker

    def counting_sessionmaker(*args, **kwargs):
        made.append(1)
        return sessionmaker(*args, **kwargs)

    monkeypatch.setattr(state.db, "sessionmaker", counting_sessionmaker)
    for _ in range(4):
        assert await _publish(studio, key, "1") == 302
    assert made == []
    assert await _publish(studio, key, "2") == 403  # a second publisher: refused as before
    monkeypatch.undo()
    assert await studio.status(event) == "live"


async def test_go_live_reads_its_own_row_not_the_tenants_armed_events(studio, state):
    """`bfl_go_live` (migration 0023) finds the event by its primary key even on a table never
    analyzed: one publish reads one row of `events`, not every armed event of the tenant (the
    plan of migration 0020 walked them all through (tenant_id, status) on such a table)."""
    if state.db.engine.dialect.name != "postgresql":
        pytest.skip("the PostgreSQL function's plan")
    events = [await studio.event() for _ in range(8)]  # armed: `ready`
    target = events[5]
    go = {
        "tenant_id": uuid.UUID(target["tenant_id"]),
        "event_id": uuid.UUID(target["id"]),
        "expected": EventStatus.READY,
    }

    async def rows_read() -> int:
        async with state.db.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT pg_stat_force_next_flush()")
        for idle, _ in state.db.calls._idle:  # the go-lives' backends (`pgcalls.CallPool`)
            await idle.execute("SELECT pg_stat_force_next_flush()")
        async with state.db.engine.connect() as conn:  # a new transaction: fresh statistics
            found = await conn.exec_driver_sql(
                "SELECT coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0) "
                "FROM pg_stat_user_tables WHERE relname = 'events'"
            )
            return int(found.scalar_one())

    with row_scope(RowScope(tenant_id=go["tenant_id"])):
        before = await rows_read()
        moved = await repo.go_live(state.db, publisher_id="1", **go)
        after = await rows_read()
    assert moved is not None
    assert moved.id == go["event_id"]
    assert after - before == 1
