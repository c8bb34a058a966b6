from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook, WebhookVerificationError

from bigfootlive.authz.roles import Role
from bigfootlive.models import WebhookEndpoint
from bigfootlive.observability.metrics import REGISTRY
from tests.fixtures.jobs import settled
from tests.webhooks.conftest import Receiver


async def wait_for_requests(receiver: Receiver, count: int, within: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while len(receiver.requests) < count:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"expected {count} requests, got {len(receiver.requests)}")
        await asyncio.sleep(0.02)


async def make_endpoint(client, admin, url: str, types: list[str]) -> dict:
    response = await client.post(
        "/api/webhooks/endpoints",
        json={"url": url, "event_types": types, "description": "test"},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def deliveries(client, admin, endpoint_id: str) -> list[dict]:
    response = await client.get(
        f"/api/webhooks/endpoints/{endpoint_id}/deliveries", headers=admin.headers
    )
    assert response.status_code == 200
    return response.json()["items"]


async def test_secret_is_shown_once_and_stored_encrypted(factory, client, state, receiver):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    created = await make_endpoint(client, admin, receiver.url, ["event.live"])
    assert created["secret"].startswith("whsec_")
    shown = await client.get(f"/api/webhooks/endpoints/{created['id']}", headers=admin.headers)
    assert "secret" not in shown.json()
    async with state.db.sessionmaker() as session:
        row = (await session.execute(select(WebhookEndpoint))).scalar_one()
    assert created["secret"] not in row.secret_encrypted
    secret_key = created["secret"].removeprefix("whsec_")
    assert secret_key not in row.secret_encrypted


async def test_user_created_is_delivered_with_a_signature_the_reference_verifier_accepts(
    factory, client, receiver, state
):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    endpoint = await make_endpoint(client, admin, receiver.url, ["user.created"])
    newcomer = await factory.user(tenant, email="newcomer@example.com", login=False)
    await wait_for_requests(receiver, 1)
    [request] = receiver.requests
    payload = Webhook(endpoint["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "user.created"
    assert payload["data"]["user_id"] == newcomer.id
    assert payload["data"]["email"] == "newcomer@example.com"
    await settled(state.jobs)
    [log] = await deliveries(client, admin, endpoint["id"])
    assert log["status"] == "succeeded"
    assert log["attempts"] == 1
    assert log["last_status_code"] == 200
    assert log["message_id"] == request.headers["webhook-id"]


async def test_tampered_body_or_wrong_secret_fails_verification(factory, client, receiver):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    endpoint = await make_endpoint(client, admin, receiver.url, ["user.created"])
    await factory.user(tenant, login=False)
    await wait_for_requests(receiver, 1)
    [request] = receiver.requests
    tampered = json.loads(request.body)
    tampered["data"]["role"] = "admin"
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(json.dumps(tampered).encode(), request.headers)
    other = await make_endpoint(client, admin, receiver.url, ["event.live"])
    with pytest.raises(WebhookVerificationError):
        Webhook(other["secret"]).verify(request.body, request.headers)


async def test_failed_delivery_is_retried_with_backoff_until_the_receiver_accepts(
    factory, client, receiver, state
):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    endpoint = await make_endpoint(client, admin, receiver.url, ["user.created"])
    receiver.statuses = [500, 503]
    await factory.user(tenant, login=False)
    await wait_for_requests(receiver, 3)
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert len(ids) == 1  # one event, three attempts
    await settled(state.jobs)
    [log] = await deliveries(client, admin, endpoint["id"])
    assert log["status"] == "succeeded"
    assert log["attempts"] == 3


async def test_delivery_that_never_succeeds_is_marked_failed(factory, client, receiver, state):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    endpoint = await make_endpoint(client, admin, receiver.url, ["user.created"])
    receiver.statuses = [500] * 10
    failed_attempts = "bigfootlive_webhook_attempts_total"
    before = REGISTRY.get_sample_value(failed_attempts, {"outcome": "failed"}) or 0
    await factory.user(tenant, login=False)
    await wait_for_requests(receiver, 4)  # 1 + JOBS_MAX_RETRIES=3
    await settled(state.jobs)
    [log] = await deliveries(client, admin, endpoint["id"])
    assert log["status"] == "failed"
    assert log["attempts"] == 4
    assert log["last_status_code"] == 500
    # /metrics: the attempts (this process ran them) and the delivery failed for good
    assert REGISTRY.get_sample_value(failed_attempts, {"outcome": "failed"}) == before + 4
    scraped = (await client.get("/metrics")).text
    assert "bigfootlive_webhook_deliveries_failed 1.0" in scraped


async def test_manual_redelivery_sends_the_same_event_again(factory, client, receiver, state):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    endpoint = await make_endpoint(client, admin, receiver.url, ["user.created"])
    await factory.user(tenant, login=False)
    await wait_for_requests(receiver, 1)
    await settled(state.jobs)
    [log] = await deliveries(client, admin, endpoint["id"])
    response = await client.post(
        f"/api/webhooks/deliveries/{log['id']}/redeliver", headers=admin.headers
    )
    assert response.status_code == 202
    await wait_for_requests(receiver, 2)
    first, again = receiver.requests
    assert first.headers["webhook-id"] == again.headers["webhook-id"]
    assert Webhook(endpoint["secret"]).verify(again.body, again.headers)["type"] == "user.created"


async def test_unsubscribed_or_disabled_endpoints_receive_nothing(factory, client, receiver, state):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    await make_endpoint(client, admin, receiver.url, ["event.live"])
    disabled = await make_endpoint(client, admin, receiver.url, ["user.created"])
    response = await client.patch(
        f"/api/webhooks/endpoints/{disabled['id']}",
        json={"is_active": False},
        headers=admin.headers,
    )
    assert response.status_code == 200
    await factory.user(tenant, login=False)
    await settled(state.jobs)
    assert receiver.requests == []


async def test_other_tenants_endpoints_are_not_found(factory, client, receiver):
    acme, globex = await factory.tenant(), await factory.tenant()
    acme_admin = await factory.user(acme, role=Role.ADMIN)
    globex_admin = await factory.user(globex, role=Role.ADMIN)
    endpoint = await make_endpoint(client, acme_admin, receiver.url, ["event.live"])
    for method, path in (
        ("GET", f"/api/webhooks/endpoints/{endpoint['id']}"),
        ("DELETE", f"/api/webhooks/endpoints/{endpoint['id']}"),
        ("GET", f"/api/webhooks/endpoints/{endpoint['id']}/deliveries"),
        ("POST", f"/api/webhooks/endpoints/{endpoint['id']}/rotate-secret"),
    ):
        response = await client.request(method, path, headers=globex_admin.headers)
        assert response.status_code == 404, (method, path)
    listed = await client.get("/api/webhooks/endpoints", headers=globex_admin.headers)
    assert listed.json() == []


async def test_only_tenant_admins_manage_webhooks(factory, client, receiver):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    response = await client.post(
        "/api/webhooks/endpoints",
        json={"url": receiver.url, "event_types": ["event.live"]},
        headers=streamer.headers,
    )
    assert response.status_code == 403


async def test_rejects_unknown_event_types_and_non_http_urls(factory, client):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    bad_type = await client.post(
        "/api/webhooks/endpoints",
        json={"url": "https://example.com/h", "event_types": ["event.exploded"]},
        headers=admin.headers,
    )
    assert bad_type.status_code == 422
    bad_url = await client.post(
        "/api/webhooks/endpoints",
        json={"url": "file:///etc/passwd", "event_types": ["event.live"]},
        headers=admin.headers,
    )
    assert bad_url.status_code == 400
    assert bad_url.json()["error"]["code"] == "invalid_webhook_url"


async def test_rotated_secret_signs_the_next_deliveries(factory, client, receiver):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    endpoint = await make_endpoint(client, admin, receiver.url, ["user.created"])
    rotated = await client.post(
        f"/api/webhooks/endpoints/{endpoint['id']}/rotate-secret", headers=admin.headers
    )
    new_secret = rotated.json()["secret"]
    assert new_secret != endpoint["secret"]
    await factory.user(tenant, login=False)
    await wait_for_requests(receiver, 1)
    [request] = receiver.requests
    Webhook(new_secret).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(request.body, request.headers)


async def test_event_lifecycle_is_announced_to_subscribed_endpoints(
    factory, client, state, receiver
):
    from tests.analytics.conftest import end_event, live_event

    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    endpoint = await make_endpoint(
        client, admin, receiver.url, ["event.live", "event.ended", "event.reconnecting"]
    )
    _, streamer, event_id = await live_event(factory, client, state, tenant=tenant)
    await end_event(client, streamer, event_id)
    await wait_for_requests(receiver, 2)
    await settled(state.jobs)
    verified = [Webhook(endpoint["secret"]).verify(r.body, r.headers) for r in receiver.requests]
    assert sorted(p["type"] for p in verified) == ["event.ended", "event.live"]
    assert {p["data"]["event_id"] for p in verified} == {event_id}
