"""The tenant admin console's API keys and webhooks in process: the key's secret shown once
and working until revoked (after a confirmation), the webhook delivery log and redelivery,
and tenant B's admin getting not found for every id of tenant A."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bigfootlive.authz.roles import Role
from tests.fixtures.factories import Factory
from tests.web.test_pages import HTML, _csrf, _signin
from tests.webhooks import conftest as hooks
from tests.webhooks.conftest import Receiver
from tests.webhooks.test_webhooks import deliveries, make_endpoint, wait_for_requests


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server on loopback recording the webhook POSTs (tests/webhooks)."""
    server = Receiver()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return hooks.settings_overrides.__wrapped__()  # type: ignore[attr-defined,no-any-return]


async def _hook(client: httpx.AsyncClient, key: str) -> httpx.Response:
    """A media-server callback with the key (what tenant API keys authorize) and no fields."""
    return await client.post("/api/streaming/hooks/nginx-rtmp", headers={"X-API-Key": key})


async def test_api_key_is_shown_once_and_revoked_after_confirmation(
    client: httpx.AsyncClient, factory: Factory
):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN, login=False)
    await _signin(client, tenant.slug, admin.user.email)
    listing = await client.get("/admin/api-keys", headers=HTML)
    assert listing.status_code == 200
    created = await client.post(
        "/admin/api-keys", data={"csrf_token": _csrf(listing), "name": "CI deploys"}, headers=HTML
    )
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    secret = re.search(r'id="new-key">([^<]+)<', created.text)
    assert secret
    key = secret.group(1)
    works = await _hook(client, key)
    assert works.status_code == 400, works.text  # the key is let in; the empty callback is not
    again = await client.get("/admin/api-keys", headers=HTML)
    assert key not in again.text  # never shown again
    assert "CI deploys" in again.text
    key_id = re.search(r'href="/admin/api-keys/([0-9a-f-]{36})/revoke"', again.text)
    assert key_id
    confirm = await client.get(f"/admin/api-keys/{key_id.group(1)}/revoke", headers=HTML)
    assert "Yes, revoke it" in confirm.text
    assert (await _hook(client, key)).status_code == 400
    revoked = await client.post(
        f"/admin/api-keys/{key_id.group(1)}/revoke",
        data={"csrf_token": _csrf(confirm)},
        headers=HTML,
    )
    assert revoked.status_code == 303
    assert (await _hook(client, key)).status_code == 401


async def test_webhook_pages_log_and_redeliver(
    client: httpx.AsyncClient, factory: Factory, receiver: Receiver
):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    endpoint = await make_endpoint(client, admin, receiver.url, ["user.created"])
    await factory.user(tenant, login=False)
    await wait_for_requests(receiver, 1)
    [delivery] = await deliveries(client, admin, endpoint["id"])
    await _signin(client, tenant.slug, admin.user.email)
    listing = await client.get("/admin/webhooks", headers=HTML)
    assert receiver.url in listing.text
    detail = await client.get(f"/admin/webhooks/{endpoint['id']}", headers=HTML)
    assert f'id="delivery-{delivery["id"]}"' in detail.text
    assert "user.created" in detail.text
    again = await client.post(
        f"/admin/webhooks/deliveries/{delivery['id']}/redeliver",
        data={"csrf_token": _csrf(detail)},
        headers=HTML,
    )
    assert again.status_code == 303
    await wait_for_requests(receiver, 2)
    ids = {r.headers.get("webhook-id") for r in receiver.requests}
    assert len(ids) == 1  # the same message again, so the receiver can deduplicate
    edited = await client.post(
        f"/admin/webhooks/{endpoint['id']}",
        data={
            "csrf_token": _csrf(detail), "url": receiver.url, "description": "CRM sync",
            "event_types": ["user.created", "event.live"],
        },
        headers=HTML,
    )  # fmt: skip
    assert edited.status_code == 303, edited.text
    api = await client.get(f"/api/webhooks/endpoints/{endpoint['id']}", headers=admin.headers)
    assert sorted(api.json()["event_types"]) == ["event.live", "user.created"]
    assert api.json()["description"] == "CRM sync"
    none = await client.post(
        f"/admin/webhooks/{endpoint['id']}",
        data={"csrf_token": _csrf(detail), "url": receiver.url},
        headers=HTML,
    )
    assert none.status_code == 422  # at least one event type
    created = await client.post(
        "/admin/webhooks",
        data={"csrf_token": _csrf(detail), "url": receiver.url, "event_types": ["event.live"]},
        headers=HTML,
    )
    assert created.status_code == 201, created.text
    assert re.search(r'id="new-secret">whsec_|id="new-secret">[^<]{16,}<', created.text)
    refused = await client.post(
        "/admin/webhooks",
        data={"csrf_token": _csrf(detail), "url": "not a url", "event_types": ["nope"]},
        headers=HTML,
    )
    assert refused.status_code == 422


async def test_other_tenants_ids_answer_not_found(
    client: httpx.AsyncClient, factory: Factory, receiver: Receiver
):
    tenant_a = await factory.tenant()
    admin_a = await factory.user(tenant_a, role=Role.ADMIN)
    endpoint = await make_endpoint(client, admin_a, receiver.url, ["user.created"])
    await factory.user(tenant_a, login=False)
    await wait_for_requests(receiver, 1)
    [delivery] = await deliveries(client, admin_a, endpoint["id"])
    key = await client.post("/api/api-keys", json={"name": "A's"}, headers=admin_a.headers)
    key_id = key.json()["id"]

    tenant_b = await factory.tenant()
    admin_b = await factory.user(tenant_b, role=Role.ADMIN, login=False)
    await _signin(client, tenant_b.slug, admin_b.user.email)
    page = await client.get("/admin/webhooks", headers=HTML)
    token = _csrf(page)
    assert receiver.url not in page.text
    for path in (
        f"/admin/webhooks/{endpoint['id']}",
        f"/admin/webhooks/{endpoint['id']}/delete",
        f"/admin/api-keys/{key_id}/revoke",
        f"/admin/webhooks/{uuid.uuid4()}",
    ):
        missing = await client.get(path, headers=HTML)
        assert missing.status_code == 404, path
    for path in (
        f"/admin/webhooks/{endpoint['id']}",
        f"/admin/webhooks/{endpoint['id']}/delete",
        f"/admin/webhooks/{endpoint['id']}/active",
        f"/admin/webhooks/deliveries/{delivery['id']}/redeliver",
        f"/admin/api-keys/{key_id}/revoke",
    ):
        missing = await client.post(
            path,
            data={
                "csrf_token": token,
                "active": "false",
                "url": "http://127.0.0.1:1/x",
                "event_types": ["event.live"],
            },
            headers=HTML,
        )
        assert missing.status_code == 404, path
    keys = await client.get("/admin/api-keys", headers=HTML)
    assert key_id not in keys.text
    # A's key and endpoint are untouched
    still = await client.get(f"/api/webhooks/endpoints/{endpoint['id']}", headers=admin_a.headers)
    assert still.json()["is_active"] is True
    listed = await client.get("/api/api-keys", headers=admin_a.headers)
    assert listed.json()[0]["revoked_at"] is None


async def test_members_below_admin_are_refused(client: httpx.AsyncClient, factory: Factory):
    tenant = await factory.tenant()
    moderator = await factory.user(tenant, role=Role.MODERATOR, login=False)
    await _signin(client, tenant.slug, moderator.user.email)
    for path in ("/admin/api-keys", "/admin/webhooks"):
        refused = await client.get(path, headers=HTML)
        assert refused.status_code == 403, path


async def test_a_visitor_without_a_session_is_sent_to_sign_in(client: httpx.AsyncClient):
    for path in ("/admin/api-keys", "/admin/webhooks"):
        anonymous = await client.get(path, headers=HTML)
        assert anonymous.status_code == 303, path
        assert anonymous.headers["location"] == f"/signin?next={path}"
