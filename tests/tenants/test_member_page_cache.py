"""The member list's first pages, kept as bytes per tenant (`identity.member_pages`), never
outlive a change of what they show: a member created, invited, accepting an invitation, a
role change, a deactivation, a profile change, a sign-in (`last_login_at`), a deletion, a
change committed outside a request, a Core write that says so. Each is seen by the very next
request on this app and, with Redis, on a second app instance (its own process state and
caches) that had the old page cached, whichever instance the write went through. A tenant
never gets another tenant's page. (SSO just-in-time provisioning: tests/sso.)"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, update

from bigfootlive.authz.roles import Role
from bigfootlive.identity import sign_in
from bigfootlive.identity.member_pages import members_stamp_key
from bigfootlive.identity.schemas import TokenPair
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import User
from tests.fixtures.factories import PASSWORD
from tests.fixtures.member_pages import (
    URL,
    Instance,
    by_id,
    everywhere,
    instances_of,
    page,
    warm,
)
from tests.fixtures.services import body_of

NEW_PASSWORD = "another-plausible-tundra-77"


@pytest.fixture
async def instances(backend, settings, client, state) -> AsyncIterator[list[Instance]]:
    async with instances_of(backend, settings, client, state) as found:
        yield found


@pytest.fixture
async def org(factory):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    viewer = await factory.user(tenant)
    return admin, viewer


async def _rename_behind_the_apps_back(state, user_id, name: str) -> None:
    """A Core UPDATE outside any session (as psql would): nothing tells the cache."""
    async with state.db.engine.begin() as conn:
        await conn.execute(update(User).where(User.id == user_id).values(display_name=name))


async def test_a_first_page_is_answered_from_the_cache_while_its_stamp_holds(org, state, instances):
    admin, viewer = org
    await warm(instances, admin)
    await _rename_behind_the_apps_back(state, viewer.user.id, "Renamed Quietly")
    for items in await everywhere(instances, admin):  # the cached page: the change unseen
        assert by_id(items)[viewer.id]["display_name"] == "Test User"
    # A Core write that says so (as the sign-in's does): every instance reads the page again.
    await state.principals.members_changed(admin.tenant.id)
    for items in await everywhere(instances, admin):
        assert by_id(items)[viewer.id]["display_name"] == "Renamed Quietly"


async def test_a_created_member_is_listed_at_once_on_every_instance(org, instances):
    admin, _ = org
    before = await warm(instances, admin)
    created = await instances[-1].http.post(
        "/api/tenant/users",
        json={"email": "new.hire@example.com", "display_name": "New Hire", "role": "streamer"}
        | {"password": NEW_PASSWORD},
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    for items in await everywhere(instances, admin):
        assert len(items) == len(before) + 1
        assert by_id(items)[created.json()["id"]]["role"] == "streamer"


async def test_an_invitation_and_its_acceptance_are_seen_at_once(org, instances, smtp_sink):
    admin, _ = org
    await warm(instances, admin)
    invited = await instances[0].http.post(
        "/api/tenant/users",
        json={"email": "invitee@example.com", "display_name": "Invitee"},
        headers=admin.headers,
    )
    assert invited.status_code == 201, invited.text
    user_id = invited.json()["id"]
    for items in await everywhere(instances, admin):
        assert by_id(items)[user_id]["email_verified"] is False
        assert by_id(items)[user_id]["last_login_at"] is None
    [mail] = await smtp_sink.wait_for("invitee@example.com")
    token = re.search(r"token=([A-Za-z0-9_\-]+)", body_of(mail))
    assert token
    accepted = await instances[-1].http.post(
        "/api/auth/invitation/accept", json={"token": token.group(1), "password": NEW_PASSWORD}
    )
    assert accepted.status_code == 200, accepted.text
    for items in await everywhere(instances, admin):
        assert by_id(items)[user_id]["email_verified"] is True
        assert by_id(items)[user_id]["last_login_at"] is not None


async def test_a_role_change_and_a_deactivation_are_seen_at_once(org, instances):
    admin, viewer = org
    await warm(instances, admin)
    path = f"/api/tenant/users/{viewer.id}"
    changed = await instances[-1].http.put(path, json={"role": "moderator"}, headers=admin.headers)
    assert changed.status_code == 200, changed.text
    for items in await everywhere(instances, admin):
        assert by_id(items)[viewer.id]["role"] == "moderator"
    await warm(instances, admin)
    disabled = await instances[0].http.put(path, json={"is_active": False}, headers=admin.headers)
    assert disabled.status_code == 200, disabled.text
    for items in await everywhere(instances, admin):
        assert by_id(items)[viewer.id]["is_active"] is False


async def test_a_profile_change_is_seen_at_once(org, instances):
    admin, viewer = org
    await warm(instances, admin)
    response = await instances[-1].http.put(
        f"/api/users/{viewer.id}", json={"display_name": "Vera Viewer"}, headers=viewer.headers
    )
    assert response.status_code == 200, response.text
    for items in await everywhere(instances, admin):
        assert by_id(items)[viewer.id]["display_name"] == "Vera Viewer"


async def test_a_password_sign_in_shows_its_time_at_once(org, instances):
    """On PostgreSQL the sign-in writes `last_login_at` in a database function, no ORM."""
    admin, viewer = org
    before = by_id(await warm(instances, admin))[viewer.id]["last_login_at"]
    signed_in = await instances[-1].http.post(
        "/api/auth/login",
        json={"tenant": viewer.tenant.slug, "email": viewer.user.email, "password": PASSWORD},
    )
    assert signed_in.status_code == 200, signed_in.text
    for items in await everywhere(instances, admin):
        assert by_id(items)[viewer.id]["last_login_at"] > before


async def test_a_sign_in_in_a_begun_transaction_shows_its_time_at_once(org, state, instances):
    """The sign-in of a request whose transaction has begun (an invitation accepted in it):
    on PostgreSQL `last_login_at` is a Core UPDATE in the session, which says so itself."""
    admin, viewer = org
    before = by_id(await warm(instances, admin))[viewer.id]["last_login_at"]
    meta = RequestMeta(ip="203.0.113.9", user_agent="test", request_id="r")
    async with state.db.transaction() as session:
        await session.execute(select(User.id).where(User.id == viewer.user.id))  # begun
        result = await sign_in.login(
            state, session, meta, tenant_slug=viewer.tenant.slug, email=viewer.user.email,
            password=PASSWORD,
        )  # fmt: skip
        assert isinstance(result, TokenPair)
    for items in await everywhere(instances, admin):
        assert by_id(items)[viewer.id]["last_login_at"] > before


async def test_changes_committed_outside_a_request_are_seen_at_once(org, factory, state, instances):
    """A job or the CLI (ORM, its own transaction): a new member, a change, a deletion."""
    admin, viewer = org
    await warm(instances, admin)
    gone = await factory.user(admin.tenant, login=False)  # created outside a request
    for items in await everywhere(instances, admin):
        assert gone.id in by_id(items)
    async with state.db.transaction() as session:
        user = await session.get(User, viewer.user.id)
        assert user is not None
        user.role = Role.STREAMER.value
        await session.delete(await session.get(User, gone.user.id))
    for items in await everywhere(instances, admin):
        assert by_id(items)[viewer.id]["role"] == "streamer"
        assert gone.id not in by_id(items)


async def test_a_tenant_never_gets_another_tenants_page(factory, instances):
    pages = {}
    admins = []
    for _ in range(2):
        tenant = await factory.tenant()
        admin = await factory.user(tenant, role=Role.ADMIN)
        await factory.user(tenant, login=False)
        await factory.user(tenant, login=False)
        admins.append(admin)
    for admin in admins:
        pages[admin.tenant.id] = {item["id"] for item in await warm(instances, admin)}
    first, second = admins
    assert pages[first.tenant.id].isdisjoint(pages[second.tenant.id])
    for _ in range(2):  # answered from the cache, each its own tenant's
        for admin in admins:
            for items in await everywhere(instances, admin):
                assert {item["id"] for item in items} == pages[admin.tenant.id]
                assert admin.id in by_id(items)


async def test_a_lost_stamp_matches_no_cached_page(org, state, instances):
    admin, viewer = org
    await warm(instances, admin)
    await _rename_behind_the_apps_back(state, viewer.user.id, "Read Again")
    await state.cache.delete(members_stamp_key(admin.tenant.id))  # a cache restart, an eviction
    for items in await everywhere(instances, admin):
        assert by_id(items)[viewer.id]["display_name"] == "Read Again"
    await warm(instances, admin)  # kept again, under a stamp made afresh


async def test_a_filtered_first_page_is_cached_and_seen_to_change(org, instances):
    admin, viewer = org
    assert [item["id"] for item in await warm(instances, admin, "?role=admin")] == [admin.id]
    response = await instances[-1].http.put(
        f"/api/tenant/users/{viewer.id}", json={"role": "admin"}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    for items in await everywhere(instances, admin, "?role=admin"):
        assert {item["id"] for item in items} == {admin.id, viewer.id}


async def test_searches_and_later_pages_are_read_every_time(org, client, state):
    admin, _ = org
    cursor = (await client.get(f"{URL}?limit=1", headers=admin.headers)).json()["next_cursor"]
    later = f"?limit=1&cursor={cursor}"
    [second] = await page(client, admin, later)  # the member on the second page of one
    search = f"?q={second['email'].split('@')[0]}"
    for query in (search, later, search, later):
        assert [item["display_name"] for item in await page(client, admin, query)] == ["Test User"]
    await _rename_behind_the_apps_back(state, uuid.UUID(second["id"]), "Read Every Time")
    for query in (search, later):
        items = await page(client, admin, query)
        assert [item["display_name"] for item in items] == ["Read Every Time"]


@pytest.mark.parametrize("settings_overrides", [{"auth_principal_ttl_seconds": 0}])
async def test_without_the_cache_nothing_is_kept(org, client, state):
    admin, viewer = org
    await page(client, admin)
    await page(client, admin)
    assert len(state.principals.member_pages) == 0
    await _rename_behind_the_apps_back(state, viewer.user.id, "Seen At Once")
    assert by_id(await page(client, admin))[viewer.id]["display_name"] == "Seen At Once"
