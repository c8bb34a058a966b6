"""The hot reads that serialize with orjson (`kit.fastjson`) answer exactly the JSON their
declared models give for the same values."""

from __future__ import annotations

import datetime as dt
import uuid

from bigfootlive.authz.roles import Role
from bigfootlive.identity.schemas import UserOut
from bigfootlive.kit import fastjson
from bigfootlive.kit.pagination import Page
from bigfootlive.tenants.schemas import TenantUserOut


def test_dumps_writes_what_pydantic_writes() -> None:
    values = {
        "id": uuid.uuid4(),
        "email": "ann@example.com",
        "display_name": 'Ann ✓ "quoted"',
        "role": Role.ADMIN.value,
        "is_active": True,
        "email_verified": False,
        "created_at": dt.datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=dt.UTC),
        "last_login_at": None,
    }
    page = {"items": [values, {**values, "created_at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC)}]}
    page["next_cursor"] = "abc"
    model = Page[TenantUserOut].model_validate(page)
    assert fastjson.dumps(page) == model.model_dump_json().encode()


async def test_the_member_list_and_me_match_their_models(client, factory) -> None:
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    for _ in range(3):
        await factory.user(tenant)
    listing = await client.get("/api/tenant/users?limit=2", headers=admin.headers)
    assert listing.status_code == 200
    assert listing.headers["content-type"] == "application/json"
    page = Page[TenantUserOut].model_validate_json(listing.content)
    assert listing.json() == page.model_dump(mode="json")
    assert len(page.items) == 2
    assert page.next_cursor is not None
    rest = await client.get(
        f"/api/tenant/users?limit=10&cursor={page.next_cursor}", headers=admin.headers
    )
    assert len(rest.json()["items"]) == 2
    assert rest.json()["next_cursor"] is None
    me = await client.get("/api/auth/me", headers=admin.headers)
    assert me.json() == UserOut.model_validate_json(me.content).model_dump(mode="json")
    assert me.json()["tenant_slug"] == tenant.slug
    assert me.json()["role"] == "admin"
