"""`GET /api/tenant/users` answered by `MemberListRoute` (no FastAPI dependency resolution):
the same answers as FastAPI's handler gave, errors included: the token first, then the
permission, then the parameters (422 `validation_error` with FastAPI's `loc`)."""

from __future__ import annotations

import pytest

from bigfootlive.authz.roles import Role
from bigfootlive.kit.pagination import MAX_LIMIT

URL = "/api/tenant/users"


@pytest.fixture
async def members(factory):
    tenant = await factory.tenant("acme")
    admin = await factory.user(tenant, role=Role.ADMIN)
    viewer = await factory.user(tenant)
    for _ in range(3):
        await factory.user(tenant, role=Role.STREAMER)
    return admin, viewer


@pytest.mark.parametrize(
    ("query", "loc", "kind"),
    [
        ("limit=0", ["query", "limit"], "greater_than_equal"),
        (f"limit={MAX_LIMIT + 1}", ["query", "limit"], "less_than_equal"),
        ("limit=many", ["query", "limit"], "int_parsing"),
        ("limit=", ["query", "limit"], "int_parsing"),
        ("role=emperor", ["query", "role"], "enum"),
        ("active=perhaps", ["query", "active"], "bool_parsing"),
        ("q=" + "x" * 101, ["query", "q"], "string_too_long"),
        ("cursor=" + "c" * 201, ["query", "cursor"], "string_too_long"),
    ],
)
async def test_invalid_parameters_are_422_with_fastapis_loc(client, members, query, loc, kind):
    admin, _ = members
    response = await client.get(f"{URL}?{query}", headers=admin.headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert [(e["loc"], e["type"]) for e in error["errors"]] == [(loc, kind)]


async def test_the_token_and_the_permission_come_before_the_parameters(client, members):
    _, viewer = members
    anonymous = await client.get(f"{URL}?limit=0")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
    forged = await client.get(f"{URL}?limit=0", headers={"Authorization": "Bearer nope"})
    assert forged.status_code == 401
    refused = await client.get(f"{URL}?limit=0", headers=viewer.headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_role"


async def test_parameters_filter_and_page_as_documented(client, members):
    admin, _ = members
    every = (await client.get(URL, headers=admin.headers)).json()
    assert len(every["items"]) == 5
    assert every["next_cursor"] is None
    page = (await client.get(f"{URL}?limit=2&limit=3", headers=admin.headers)).json()
    assert len(page["items"]) == 3  # the last of a repeated parameter, as FastAPI reads it
    assert page["items"] == every["items"][:3]
    rest = await client.get(
        f"{URL}?limit=3&cursor={page['next_cursor']}&unknown=1", headers=admin.headers
    )
    assert rest.json()["items"] == every["items"][3:]
    streamers = (await client.get(f"{URL}?role=streamer&active=true", headers=admin.headers)).json()
    assert {u["role"] for u in streamers["items"]} == {"streamer"}
    assert len(streamers["items"]) == 3


def test_the_route_is_documented_with_its_parameters(app):
    operation = app.openapi()["paths"][URL]["get"]
    assert [p["name"] for p in operation["parameters"]] == [
        "q", "cursor", "limit", "role", "active",
    ]  # fmt: skip
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("Page_TenantUserOut_")
