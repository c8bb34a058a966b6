"""API keys for machine clients: shown once, listed by prefix, revoked, tenant or platform."""

from __future__ import annotations

import uuid
from typing import Any

from bigfootlive.authz.roles import Role
from bigfootlive.models import Event, Tenant
from bigfootlive.tenants import service as tenants


async def _set_active(state, tenant: Tenant, active: bool) -> None:
    async with state.db.transaction() as session:
        row = await tenants.get_tenant(session, tenant.id)
        assert row is not None
        assert await tenants.set_active(state, session, None, row, active)


async def _status(state, event: dict[str, Any]) -> str:
    async with state.db.transaction() as session:
        row = await session.get(Event, uuid.UUID(event["id"]))
        assert row is not None
        return row.status


async def test_key_is_shown_once_and_listed_by_prefix_only(studio, state):
    created = (
        await studio.client.post("/api/api-keys", json={"name": "ci"}, headers=studio.admin.headers)
    ).json()
    assert created["key"].startswith("bfk_")
    assert created["key"].startswith(created["prefix"])
    listing = await studio.client.get("/api/api-keys", headers=studio.admin.headers)
    assert listing.status_code == 200
    assert created["key"] not in listing.text
    assert {k["prefix"] for k in listing.json()} >= {created["prefix"]}
    assert all("key" not in k for k in listing.json())


async def test_streamers_cannot_manage_api_keys(studio):
    response = await studio.client.post(
        "/api/api-keys", json={"name": "x"}, headers=studio.streamer.headers
    )
    assert response.status_code == 403


async def test_only_platform_admins_create_platform_keys(studio, factory):
    denied = await studio.client.post(
        "/api/api-keys", json={"name": "x", "scope": "platform"}, headers=studio.admin.headers
    )
    assert denied.status_code == 403
    root = await factory.user(studio.admin.tenant, role=Role.ADMIN, platform_admin=True)
    created = await studio.client.post(
        "/api/api-keys", json={"name": "x", "scope": "platform"}, headers=root.headers
    )
    assert created.status_code == 201
    assert created.json()["tenant_id"] is None


async def test_platform_key_authorizes_callbacks_of_any_tenant(studio, factory, client):
    root = await factory.user(await factory.tenant(), role=Role.ADMIN, platform_admin=True)
    key = (
        await client.post(
            "/api/api-keys", json={"name": "fleet", "scope": "platform"}, headers=root.headers
        )
    ).json()["key"]
    event = await studio.event()
    response = await client.post(
        f"/api/streaming/events/{event['id']}/webhook",
        json={"action": "publish", "client_id": "e", "stream_key": event["ingest"]["stream_key"]},
        headers={"X-API-Key": key},
    )
    assert response.status_code == 200


async def test_other_tenants_key_cannot_be_revoked(studio, factory, client):
    other_admin = await factory.user(await factory.tenant(), role=Role.ADMIN)
    theirs = (
        await client.post("/api/api-keys", json={"name": "t"}, headers=other_admin.headers)
    ).json()
    response = await client.delete(f"/api/api-keys/{theirs['id']}", headers=studio.admin.headers)
    assert response.status_code == 404
    missing = await client.delete(f"/api/api-keys/{uuid.uuid4()}", headers=studio.admin.headers)
    assert missing.status_code == 404


async def test_api_key_bad_input(studio):
    empty = await studio.client.post(
        "/api/api-keys", json={"name": ""}, headers=studio.admin.headers
    )
    assert empty.status_code == 422
    scope = await studio.client.post(
        "/api/api-keys", json={"name": "x", "scope": "galaxy"}, headers=studio.admin.headers
    )
    assert scope.status_code == 422


async def test_platform_key_callbacks_are_refused_for_a_deactivated_tenants_events(
    studio, factory, client, state
):
    root = await factory.user(await factory.tenant(), role=Role.ADMIN, platform_admin=True)
    key = (
        await client.post(
            "/api/api-keys", json={"name": "fleet", "scope": "platform"}, headers=root.headers
        )
    ).json()["key"]
    event, later = await studio.event(), await studio.event()

    async def hook(event: dict[str, Any], action: str, **fields: Any) -> Any:
        return await client.post(
            f"/api/streaming/events/{event['id']}/webhook",
            json={"action": action, "client_id": "enc-1", **fields},
            headers={"X-API-Key": key},
        )

    stream_key = event["ingest"]["stream_key"]
    assert (await hook(event, "publish", stream_key=stream_key)).status_code == 200
    assert (await hook(event, "play")).status_code == 200  # the tenant's status is cached now

    await _set_active(state, studio.admin.tenant, False)
    for action, fields in (
        ("publisher_alive", {}),
        ("play", {}),
        ("publish", {"stream_key": stream_key}),
    ):
        refused = await hook(event, action, **fields)
        assert refused.status_code == 403, (action, refused.text)
        assert refused.json() == {"allowed": False, "reason": "tenant_inactive"}
    refused = await hook(later, "publish", stream_key=later["ingest"]["stream_key"])
    assert refused.json()["reason"] == "tenant_inactive"
    assert await _status(state, later) == "ready"
    # The encoder leaving is still recorded: the event does not stay live.
    assert (await hook(event, "unpublish", stream_key=stream_key)).status_code == 200
    assert await _status(state, event) != "live"

    await _set_active(state, studio.admin.tenant, True)
    allowed = await hook(later, "publish", stream_key=later["ingest"]["stream_key"])
    assert allowed.status_code == 200, allowed.text
