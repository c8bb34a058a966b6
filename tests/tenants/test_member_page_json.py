"""The member list's body (rows rendered by `kit.fastjson`, no model built) is byte for byte the
JSON of the documented model `Page[TenantUserOut]`, on awkward data (quotes, backslashes, control
characters, non-ASCII, datetimes with and without microseconds, nulls), and its cursor leads to
the next page, on both databases."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from bigfootlive.authz.roles import Role
from bigfootlive.authz.scoping import tenant_scope
from bigfootlive.kit.pagination import Page
from bigfootlive.models import User
from bigfootlive.tenants import repository as repo
from bigfootlive.tenants.endpoints import render_page
from bigfootlive.tenants.schemas import TenantUserOut

URL = "/api/tenant/users"
T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
# (display name, role, active, verified, created_at, last_login_at), oldest first
AWKWARD = [
    ('Quote " and \\ backslash /', Role.VIEWER, True, True, T0, None),
    ("Tab\tnew\nline\r\x01\x1f\x7f", Role.STREAMER, False, True, T0.replace(microsecond=120000),
     T0.replace(microsecond=7)),
    ("Ünïcødé ✓ 😀 \u2028", Role.MODERATOR, True, False, T0 + dt.timedelta(seconds=1),
     T0 + dt.timedelta(days=3)),
    ("</script>&'<b>", Role.VIEWER, True, True, T0 + dt.timedelta(seconds=1, microseconds=1), None),
    ("", Role.VIEWER, True, False, T0 + dt.timedelta(seconds=2, microseconds=999999), None),
]  # fmt: skip


async def _awkward_tenant(state, factory):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)  # the newest: created now
    for i, (name, role, active, verified, created, last_login) in enumerate(AWKWARD):
        member = await factory.user(tenant, role=role, email=f"m{i}+x@example.com", login=False)
        async with state.db.transaction() as session:
            await session.execute(
                update(User).where(User.id == member.user.id).values(
                    display_name=name, is_active=active, created_at=created,
                    last_login_at=last_login, email_verified_at=created if verified else None,
                )
            )  # fmt: skip
    return tenant, admin


async def _general_body(state, tenant_id, limit: int) -> bytes:
    """The body as the general path renders it: Core rows (`Database.reads`) and fastjson."""
    with tenant_scope(tenant_id):
        async with state.db.reads() as conn:
            rows = await repo.list_users(
                conn, tenant_id, query=None, cursor=None, limit=limit,
                columns=repo.USER_PAGE_COLUMNS,
            )  # fmt: skip
    return render_page(rows, limit)


def _model_body(body: bytes) -> bytes:
    """What FastAPI's response model would give for the same page."""
    return Page[TenantUserOut].model_validate_json(body).model_dump_json().encode()


@pytest.mark.parametrize("limit", [3, 50])
async def test_the_first_page_is_the_models_json(client, state, factory, limit):
    tenant, admin = await _awkward_tenant(state, factory)
    general = await _general_body(state, tenant.id, limit)
    answered = await client.get(f"{URL}?limit={limit}", headers=admin.headers)
    assert answered.status_code == 200, answered.text
    assert answered.content == general
    assert _model_body(general) == general
    page = answered.json()
    assert len(page["items"]) == min(limit, len(AWKWARD) + 1)
    assert (page["next_cursor"] is not None) == (limit < len(AWKWARD) + 1)
    if page["next_cursor"] is not None:  # the cursor leads to the rest of the list
        after = f"{URL}?limit=50&cursor={page['next_cursor']}"
        rest = await client.get(after, headers=admin.headers)
        every = (await client.get(URL, headers=admin.headers)).json()["items"]
        assert rest.json()["items"] == every[limit:]


async def test_the_fields_are_as_documented(client, state, factory):
    _, admin = await _awkward_tenant(state, factory)
    items = (await client.get(URL, headers=admin.headers)).json()["items"]
    by_name = {item["display_name"]: item for item in items}
    tabbed = by_name[AWKWARD[1][0]]
    assert tabbed["created_at"] == "2026-01-02T03:04:05.120000Z"
    assert tabbed["last_login_at"] == "2026-01-02T03:04:05.000007Z"
    assert tabbed["is_active"] is False
    assert by_name[AWKWARD[0][0]]["created_at"] == "2026-01-02T03:04:05Z"
    assert by_name[AWKWARD[0][0]]["last_login_at"] is None
    assert by_name[AWKWARD[2][0]]["email_verified"] is False
    assert by_name[AWKWARD[2][0]]["role"] == "moderator"
    assert list(tabbed) == list(TenantUserOut.model_fields)
