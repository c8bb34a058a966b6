from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest

from bigfootlive.notifications import service as notifications
from bigfootlive.notifications.tasks import send_event_live_email
from bigfootlive.notifications.wire import user_channel
from tests.analytics.conftest import live_event
from tests.fixtures.jobs import settled
from tests.fixtures.polling import until
from tests.fixtures.services import body_of


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"jobs_inprocess_worker": True, "jobs_scheduler": False, "jobs_min_backoff_ms": 50}


def unsubscribe_link(message) -> str:
    match = re.search(r"(/api/notifications/unsubscribe\?token=\S+)", body_of(message))
    assert match, body_of(message)
    return match.group(1)


async def test_followers_get_an_email_when_the_streamer_goes_live(
    factory, client, state, smtp_sink
):
    tenant = await factory.tenant()
    fan = await factory.user(tenant, email=f"fan-{uuid.uuid4().hex[:6]}@example.com")
    quiet = await factory.user(tenant, email=f"quiet-{uuid.uuid4().hex[:6]}@example.com")
    stranger = await factory.user(tenant, email=f"stranger-{uuid.uuid4().hex[:6]}@example.com")
    opted_out = await client.put(
        "/api/notifications/preferences", json={"email_event_live": False}, headers=quiet.headers
    )
    assert opted_out.json() == {"email_event_live": False, "realtime_event_live": True}

    async def follow_streamer(streamer_id: str) -> None:
        for account in (fan, quiet):
            response = await client.post(
                f"/api/users/{streamer_id}/follow", headers=account.headers
            )
            assert response.status_code == 200

    await live_event(factory, client, state, tenant=tenant, before_live=follow_streamer)
    [message] = await smtp_sink.wait_for(fan.user.email)
    assert "is live: Launch day" in message["Subject"]
    assert "/api/notifications/unsubscribe?token=" in body_of(message)
    await settled(state.jobs)
    assert smtp_sink.to(quiet.user.email) == []
    assert smtp_sink.to(stranger.user.email) == []


async def test_connected_followers_get_a_realtime_message(factory, client, state, smtp_sink):
    tenant = await factory.tenant()
    fan = await factory.user(tenant, email=f"fan-{uuid.uuid4().hex[:6]}@example.com")
    received: list[dict] = []

    async def on_message(raw: bytes) -> None:
        received.append(json.loads(raw))

    unsubscribe = await state.pubsub.subscribe(user_channel(fan.id), on_message)
    try:

        async def follow_streamer(streamer_id: str) -> None:
            await client.post(f"/api/users/{streamer_id}/follow", headers=fan.headers)

        await live_event(factory, client, state, tenant=tenant, before_live=follow_streamer)
        await until(lambda: received, within=5)
    finally:
        await unsubscribe()
    assert received[0]["kind"] == "event.live"
    assert received[0]["title"] == "Launch day"


async def test_duplicate_delivery_of_the_email_job_sends_one_email(
    factory, client, state, smtp_sink
):
    tenant = await factory.tenant()
    fan = await factory.user(tenant, email=f"fan-{uuid.uuid4().hex[:6]}@example.com")
    job = {
        "tenant_id": str(tenant.id),
        "user_id": fan.id,
        "owner_name": "Streamer",
        "event_id": str(uuid.uuid4()),
        "title": "Twice",
    }
    message_id = str(uuid.uuid4())
    await state.jobs.enqueue(send_event_live_email, message_id=message_id, **job)
    await state.jobs.enqueue(send_event_live_email, message_id=message_id, **job)
    await state.jobs.enqueue(send_event_live_email, **job)  # even as a separate message
    await smtp_sink.wait_for(fan.user.email)
    await settled(state.jobs)
    assert len(smtp_sink.to(fan.user.email)) == 1


async def test_unsubscribe_link_stops_the_emails_without_signing_in(
    factory, client, state, smtp_sink
):
    tenant = await factory.tenant()
    fan = await factory.user(tenant, email=f"fan-{uuid.uuid4().hex[:6]}@example.com")
    job = {
        "tenant_id": str(tenant.id),
        "user_id": fan.id,
        "owner_name": "Streamer",
        "title": "First",
    }
    await state.jobs.enqueue(send_event_live_email, event_id=str(uuid.uuid4()), **job)
    [message] = await smtp_sink.wait_for(fan.user.email)
    link = unsubscribe_link(message)

    page = await client.get(link)  # what a mail scanner's prefetch does: changes nothing
    assert page.status_code == 200
    assert 'method="post"' in page.text
    prefs = await client.get("/api/notifications/preferences", headers=fan.headers)
    assert prefs.json()["email_event_live"] is True

    done = await client.post(link)
    assert done.status_code == 200
    assert done.json() == {"unsubscribed": True, "kind": "event_live"}
    prefs = await client.get("/api/notifications/preferences", headers=fan.headers)
    assert prefs.json()["email_event_live"] is False

    await state.jobs.enqueue(send_event_live_email, event_id=str(uuid.uuid4()), **job)
    await settled(state.jobs)
    assert len(smtp_sink.to(fan.user.email)) == 1


async def test_forged_unsubscribe_token_is_refused(factory, client, state):
    tenant = await factory.tenant()
    fan = await factory.user(tenant)
    token = notifications.unsubscribe_token(state, tenant.id, fan.user.id)
    victim = await factory.user(tenant)
    forged = token.replace(str(fan.user.id), str(victim.user.id))
    response = await client.post(f"/api/notifications/unsubscribe?token={forged}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_token"
