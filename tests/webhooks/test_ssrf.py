"""Endpoint URLs may not reach internal addresses: refused when saved, re-checked and pinned at
delivery (DNS rebinding), and redirects are never followed."""

from __future__ import annotations

import asyncio

import pytest

from bigfootlive.authz.roles import Role
from tests.fixtures.jobs import settled
from tests.webhooks.conftest import Receiver
from tests.webhooks.test_webhooks import deliveries, make_endpoint, wait_for_requests

INTERNAL_URLS = [
    "http://127.0.0.1/hooks",
    "http://localhost:8080/hooks",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.5/hooks",
    "http://192.168.1.1/hooks",
    "http://100.64.0.1/hooks",
    "http://0.0.0.0/hooks",
    "http://[::1]/hooks",
    "http://[::ffff:127.0.0.1]/hooks",
    "http://[fd00:ec2::254]/hooks",
    "http://2130706433/hooks",  # 127.0.0.1 as one decimal number
    "http://224.0.0.1/hooks",
]


@pytest.fixture
async def admin(factory):
    return await factory.user(await factory.tenant(), role=Role.ADMIN)


@pytest.fixture
def guarded(state):
    """The production default: private networks not allowed."""
    state.settings.webhook_allow_private_networks = False


@pytest.mark.parametrize("url", INTERNAL_URLS)
async def test_internal_addresses_are_refused_on_create(client, admin, guarded, url):
    response = await client.post(
        "/api/webhooks/endpoints",
        json={"url": url, "event_types": ["user.created"]},
        headers=admin.headers,
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "webhook_url_not_allowed"


async def test_unresolvable_hosts_are_refused_on_create(client, admin, guarded):
    response = await client.post(
        "/api/webhooks/endpoints",
        json={"url": "https://hooks.nothing.invalid/x", "event_types": ["user.created"]},
        headers=admin.headers,
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "webhook_url_unresolvable"


async def test_internal_addresses_are_refused_on_update(client, admin, state, receiver):
    endpoint = await make_endpoint(client, admin, receiver.url, ["user.created"])
    state.settings.webhook_allow_private_networks = False
    response = await client.patch(
        f"/api/webhooks/endpoints/{endpoint['id']}",
        json={"url": "http://169.254.169.254/latest/meta-data/"},
        headers=admin.headers,
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "webhook_url_not_allowed"
    shown = await client.get(f"/api/webhooks/endpoints/{endpoint['id']}", headers=admin.headers)
    assert shown.json()["url"] == receiver.url


async def test_delivery_rechecks_the_address_and_sends_nothing_inward(
    client, admin, factory, state, receiver
):
    # Saved while the host was acceptable; by delivery time it resolves to an internal address.
    endpoint = await make_endpoint(client, admin, receiver.url, ["user.created"])
    state.settings.webhook_allow_private_networks = False
    await factory.user(admin.tenant, login=False)
    for _ in range(200):
        logged = await deliveries(client, admin, endpoint["id"])
        if logged and logged[0]["attempts"] >= 1:
            break
        await asyncio.sleep(0.05)
    [log] = logged
    assert log["status"] != "succeeded"
    assert log["last_error"].startswith("refused:")
    assert "non-public" in log["last_error"]
    assert log["last_status_code"] is None
    assert receiver.requests == []


async def test_redirects_are_not_followed(client, admin, factory, receiver, state):
    inner = Receiver()
    inner.start()
    try:
        receiver.statuses = [302] * 10
        receiver.location = inner.url
        endpoint = await make_endpoint(client, admin, receiver.url, ["user.created"])
        await factory.user(admin.tenant, login=False)
        await wait_for_requests(receiver, 1)
        await settled(state.jobs)
        [log] = await deliveries(client, admin, endpoint["id"])
        assert log["last_status_code"] == 302
        assert log["status"] != "succeeded"
        assert inner.requests == []
    finally:
        inner.stop()
