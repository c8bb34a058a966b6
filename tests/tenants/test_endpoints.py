"""Tenant info and membership management: admins only, own tenant only, no escalation."""

from __future__ import annotations

import uuid

import pytest

from bigfootlive.authz.roles import Role


@pytest.fixture
async def acme(factory):
    tenant = await factory.tenant("acme", domains=["acme.com"])
    return {
        "tenant": tenant,
        "admin": await factory.user(tenant, role=Role.ADMIN, email="boss@acme.com"),
        "mod": await factory.user(tenant, role=Role.MODERATOR),
        "streamer": await factory.user(tenant, role=Role.STREAMER),
        "viewer": await factory.user(tenant),
    }


async def test_any_member_reads_tenant_info(client, acme):
    response = await client.get("/api/tenant/info", headers=acme["viewer"].headers)
    assert response.status_code == 200
    body = response.json()
    assert body["slug"] == "acme"
    assert body["email_domains"] == ["acme.com"]
    assert body["settings"]["password_policy"]["min_length"] == 12
    assert body["settings"]["lockout"]["threshold"] == 5


async def test_admin_updates_settings_and_the_change_is_audited(client, acme):
    admin = acme["admin"]
    response = await client.put(
        "/api/tenant/info",
        json={
            "name": "Acme Corp",
            "settings": {"allow_self_registration": True, "lockout": {"threshold": 7}},
        },
        headers=admin.headers,
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Acme Corp"
    assert response.json()["settings"]["allow_self_registration"] is True
    assert response.json()["settings"]["lockout"]["threshold"] == 7
    audit = await client.get(
        "/api/auth/audit?scope=tenant&action=tenant.settings_change", headers=admin.headers
    )
    [record] = audit.json()["items"]
    assert set(record["details"]["changed"]) == {
        "name",
        "settings.allow_self_registration",
        "settings.lockout",
    }


@pytest.mark.parametrize("who", ["viewer", "streamer", "mod"])
async def test_non_admins_cannot_update_tenant_info(client, acme, who):
    response = await client.put(
        "/api/tenant/info", json={"name": "Pwned"}, headers=acme[who].headers
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_role"


@pytest.mark.parametrize(
    "body",
    [
        {"settings": {"lockout": {"threshold": 0}}},
        {"settings": {"default_role": "admin"}},
        {"settings": {"password_policy": {"min_length": 4}}},
        {"settings": {"unknown": 1}},
        {"name": ""},
    ],
)
async def test_invalid_tenant_settings_are_422_and_change_nothing(client, acme, body):
    response = await client.put("/api/tenant/info", json=body, headers=acme["admin"].headers)
    assert response.status_code == 422
    info = await client.get("/api/tenant/info", headers=acme["admin"].headers)
    assert info.json()["name"] == "Acme"
    assert info.json()["settings"]["lockout"]["threshold"] == 5


async def test_user_list_paginates_and_searches(client, acme):
    admin = acme["admin"]
    first = await client.get("/api/tenant/users?limit=3", headers=admin.headers)
    assert first.status_code == 200
    assert len(first.json()["items"]) == 3
    cursor = first.json()["next_cursor"]
    second = await client.get(f"/api/tenant/users?limit=3&cursor={cursor}", headers=admin.headers)
    assert len(second.json()["items"]) == 1
    assert second.json()["next_cursor"] is None
    ids = {u["id"] for u in first.json()["items"] + second.json()["items"]}
    assert len(ids) == 4
    found = await client.get("/api/tenant/users?q=BOSS", headers=admin.headers)
    assert [u["email"] for u in found.json()["items"]] == ["boss@acme.com"]


async def test_viewers_and_streamers_cannot_list_users(client, acme):
    for who in ("viewer", "streamer"):
        response = await client.get("/api/tenant/users", headers=acme[who].headers)
        assert response.status_code == 403


async def test_invalid_cursor_is_400(client, acme):
    response = await client.get("/api/tenant/users?cursor=garbage", headers=acme["admin"].headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cursor"


async def test_admin_creates_a_user_with_an_invitation_email(client, acme, smtp_sink):
    response = await client.post(
        "/api/tenant/users",
        json={"email": "New.Hire@acme.com", "display_name": "New Hire", "role": "streamer"},
        headers=acme["admin"].headers,
    )
    assert response.status_code == 201
    assert response.json()["email"] == "new.hire@acme.com"
    assert response.json()["role"] == "streamer"
    [mail] = await smtp_sink.wait_for("new.hire@acme.com")
    assert "/invite/accept?token=" in mail.get_payload()


async def test_creating_an_existing_email_is_409(client, acme):
    response = await client.post(
        "/api/tenant/users",
        json={"email": "boss@acme.com", "display_name": "Again"},
        headers=acme["admin"].headers,
    )
    assert response.status_code == 409


async def test_streamer_cannot_set_their_own_role(client, acme):
    streamer = acme["streamer"]
    response = await client.put(
        f"/api/tenant/users/{streamer.id}", json={"role": "admin"}, headers=streamer.headers
    )
    assert response.status_code == 403
    me = await client.get("/api/auth/me", headers=streamer.headers)
    assert me.json()["role"] == "streamer"


async def test_moderator_cannot_create_admins(client, acme):
    response = await client.post(
        "/api/tenant/users",
        json={"email": "sneaky@acme.com", "display_name": "S", "role": "admin"},
        headers=acme["mod"].headers,
    )
    assert response.status_code == 403


async def test_admin_changes_a_role_and_it_applies_to_the_next_request(client, acme):
    viewer = acme["viewer"]
    response = await client.put(
        f"/api/tenant/users/{viewer.id}", json={"role": "moderator"}, headers=acme["admin"].headers
    )
    assert response.status_code == 200
    assert response.json()["role"] == "moderator"
    # No new token needed: authorization reads the current role.
    assert (await client.get("/api/tenant/users", headers=viewer.headers)).status_code == 200
    audit = await client.get(
        "/api/auth/audit?scope=tenant&action=tenant.role_change", headers=acme["admin"].headers
    )
    [record] = audit.json()["items"]
    assert record["details"] == {"from": "viewer", "to": "moderator"}


async def test_the_last_admin_cannot_be_demoted(client, acme):
    admin = acme["admin"]
    response = await client.put(
        f"/api/tenant/users/{admin.id}", json={"role": "viewer"}, headers=admin.headers
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "last_admin"


async def test_disabling_a_user_ends_their_sessions(client, acme):
    viewer = acme["viewer"]
    response = await client.put(
        f"/api/tenant/users/{viewer.id}", json={"is_active": False}, headers=acme["admin"].headers
    )
    assert response.status_code == 200
    assert (await client.get("/api/auth/me", headers=viewer.headers)).status_code == 401


async def test_tenant_admin_cannot_touch_another_tenants_users(client, factory, acme):
    other = await factory.tenant("globex")
    outsider = await factory.user(other)
    for method, body in (("PUT", {"role": "admin"}), ("PUT", {"is_active": False})):
        response = await client.request(
            method, f"/api/tenant/users/{outsider.id}", json=body, headers=acme["admin"].headers
        )
        assert response.status_code == 404
    listing = await client.get(
        f"/api/tenant/users?q={outsider.user.email}", headers=acme["admin"].headers
    )
    assert listing.json()["items"] == []
    assert (await client.get("/api/auth/me", headers=outsider.headers)).json()["role"] == "viewer"


async def test_unknown_user_id_is_404(client, acme):
    response = await client.put(
        f"/api/tenant/users/{uuid.uuid4()}", json={"role": "viewer"}, headers=acme["admin"].headers
    )
    assert response.status_code == 404


async def test_the_first_page_lists_only_the_callers_tenant_and_is_fresh(client, factory, acme):
    # The first page is the hot path (`Database.read_rows`): it shows the caller's tenant
    # only, and a change made a moment ago.
    other = await factory.tenant("initech")
    outsider = await factory.user(other, role=Role.ADMIN)
    theirs = await client.get("/api/tenant/users", headers=outsider.headers)
    assert [u["email"] for u in theirs.json()["items"]] == [outsider.user.email]
    ours = await client.get("/api/tenant/users", headers=acme["admin"].headers)
    emails = {u["email"] for u in ours.json()["items"]}
    assert outsider.user.email not in emails
    assert len(emails) == 4
    member = next(u for u in ours.json()["items"] if u["role"] == "viewer")
    changed = await client.put(
        f"/api/tenant/users/{member['id']}", json={"role": "moderator"},
        headers=acme["admin"].headers,
    )  # fmt: skip
    assert changed.status_code == 200, changed.text
    again = await client.get("/api/tenant/users", headers=acme["admin"].headers)
    roles = {u["id"]: u["role"] for u in again.json()["items"]}
    assert roles[member["id"]] == "moderator"
