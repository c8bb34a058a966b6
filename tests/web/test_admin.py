"""The tenant admin console's members pages in process: admins only, search and pagination over
the tenant's own members, another tenant's member answers not found."""

from __future__ import annotations

import re
import uuid

import httpx

from bigfootlive.authz.roles import Role
from bigfootlive.web.admin import PAGE_SIZE
from tests.fixtures.factories import Factory
from tests.web.test_pages import HTML, _signin


def _member_links(page: httpx.Response) -> list[str]:
    return re.findall(r'href="/admin/users/([0-9a-f-]{36})"', page.text)


async def test_the_console_is_for_admins(client: httpx.AsyncClient, factory: Factory):
    anonymous = await client.get("/admin/users", headers=HTML)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/signin?next=/admin/users"
    tenant = await factory.tenant()
    moderator = await factory.user(tenant, role=Role.MODERATOR, login=False)
    admin = await factory.user(tenant, role=Role.ADMIN, login=False)
    await _signin(client, tenant.slug, moderator.user.email)
    home = await client.get("/", headers=HTML)
    assert 'href="/admin/users"' not in home.text
    for path in ("/admin", "/admin/users", f"/admin/users/{admin.user.id}"):
        refused = await client.get(path, headers=HTML)
        assert refused.status_code == 403
        assert "insufficient_role" in refused.text
        assert admin.user.email not in refused.text


async def test_search_and_pagination(client: httpx.AsyncClient, factory: Factory):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN, login=False)
    members = [
        await factory.user(tenant, email=f"crew{i:02d}@example.com", login=False)
        for i in range(PAGE_SIZE + 2)
    ]
    special = await factory.user(tenant, email="Zelda.Special@example.com", login=False)
    other = await factory.user(await factory.tenant(), email="crew-other@example.com", login=False)
    await _signin(client, tenant.slug, admin.user.email)
    home = await client.get("/", headers=HTML)
    assert 'href="/admin/users"' in home.text

    first = await client.get("/admin/users", headers=HTML)
    assert first.status_code == 200
    found = re.search(r'href="(/admin/users\?cursor=[^"]+)" rel="next"', first.text)
    assert found
    second = await client.get(found.group(1).replace("&amp;", "&"), headers=HTML)
    assert second.status_code == 200
    assert 'rel="next"' not in second.text
    ids = _member_links(first) + _member_links(second)
    everyone = {str(a.user.id) for a in [admin, special, *members]}
    assert len(_member_links(first)) == PAGE_SIZE
    assert sorted(ids) == sorted(everyone)  # each member once, no one else
    assert str(other.user.id) not in ids

    search = await client.get("/admin/users", params={"q": "ZELDA"}, headers=HTML)
    assert _member_links(search) == [str(special.user.id)]
    crew = await client.get("/admin/users", params={"q": "crew"}, headers=HTML)
    assert "crew-other@example.com" not in crew.text
    nobody = await client.get("/admin/users", params={"q": "no-such-person"}, headers=HTML)
    assert _member_links(nobody) == []
    assert "No member matches" in nobody.text
    bad = await client.get("/admin/users", params={"cursor": "garbage"}, headers=HTML)
    assert bad.status_code == 400


async def test_a_member_page_and_other_tenants_ids(client: httpx.AsyncClient, factory: Factory):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN, login=False)
    member = await factory.user(tenant, role=Role.STREAMER, email="sam@example.com", login=False)
    elsewhere = await factory.user(await factory.tenant(), role=Role.ADMIN, login=False)
    await _signin(client, tenant.slug, admin.user.email)
    own = await client.get(f"/admin/users/{member.user.id}", headers=HTML)
    assert own.status_code == 200
    assert "sam@example.com" in own.text
    assert "streamer" in own.text
    for user_id in (elsewhere.user.id, uuid.uuid4()):
        missing = await client.get(f"/admin/users/{user_id}", headers=HTML)
        assert missing.status_code == 404
        assert elsewhere.user.email not in missing.text
    malformed = await client.get("/admin/users/not-an-id", headers=HTML)
    assert malformed.status_code == 404  # no page at that address


async def test_the_console_address_leads_to_its_first_page(
    client: httpx.AsyncClient, factory: Factory
):
    anonymous = await client.get("/admin", headers=HTML)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/signin?next=/admin"
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN, login=False)
    await _signin(client, tenant.slug, admin.user.email)
    home = await client.get("/admin", headers=HTML)
    assert home.status_code == 303  # was "Page not found"
    assert home.headers["location"] == "/admin/users"
