"""The tenant audit export: exactly the matching records, streamed in chunks, for the tenant's
admins only; bad filters are refused with a JSON error."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid

import pytest

from bigfootlive.authz.roles import Role
from bigfootlive.models import AuditRecord
from bigfootlive.tenants import audit_export

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
X, Y = uuid.uuid4(), uuid.uuid4()


async def _seed(state, tenant_id, rows) -> list[str]:
    """Insert records (actor, action, ip, minutes after T0); returns their ids."""
    ids = []
    async with state.db.transaction() as session:
        for actor, action, ip, minute in rows:
            record = AuditRecord(
                id=uuid.uuid4(),
                tenant_id=tenant_id,
                actor_id=actor,
                action=action,
                result="success",
                ip=ip,
                user_agent="ua",
                request_id="req",
                details={"minute": minute, "formula": "=1+1"},
                created_at=T0 + dt.timedelta(minutes=minute),
            )
            session.add(record)
            ids.append(str(record.id))
    return ids


@pytest.fixture
async def world(factory, state):
    a = await factory.tenant()
    b = await factory.tenant()
    world = {
        "admin_a": await factory.user(a, role=Role.ADMIN),
        "mod_a": await factory.user(a, role=Role.MODERATOR),
        "admin_b": await factory.user(b, role=Role.ADMIN),
    }
    world["a"] = await _seed(
        state,
        a.id,
        [
            (X, "event.create", "10.0.0.1", 0),
            (Y, "event.create", "10.0.0.2", 1),
            (X, "event.delete", "10.0.0.1", 2),
            (X, "event.create", "10.0.0.1", 3),
            (None, "event.create", "10.0.0.9", 4),
        ],
    )
    world["b"] = await _seed(state, b.id, [(X, "event.create", "10.0.0.1", 0)])
    return world


async def _export(client, account, **params):
    response = await client.get("/api/tenant/audit/export", params=params, headers=account.headers)
    return response


def _jsonl_ids(response) -> list[str]:
    return [json.loads(line)["id"] for line in response.text.splitlines() if line]


async def test_jsonl_export_holds_exactly_the_records_of_the_action(client, world):
    response = await _export(client, world["admin_a"], format="jsonl", action="event.create")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="audit-')
    assert disposition.endswith('.jsonl"')
    # Oldest first; the other action, the other tenant and the sign-ins are absent.
    a = world["a"]
    assert _jsonl_ids(response) == [a[0], a[1], a[3], a[4]]
    first = json.loads(response.text.splitlines()[0])
    assert first["actor_id"] == str(X)
    assert first["ip"] == "10.0.0.1"
    assert first["created_at"].startswith("2026-11-01T12:00:00")


async def test_csv_export_combines_actor_ip_and_time_range(client, world):
    response = await _export(
        client,
        world["admin_a"],
        format="csv",
        actor=str(X),
        ip="10.0.0.1",
        since=(T0 + dt.timedelta(minutes=1)).isoformat(),
        until=(T0 + dt.timedelta(minutes=3, seconds=30)).isoformat(),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["id"] for r in rows] == [world["a"][2], world["a"][3]]
    assert rows[0]["action"] == "event.delete"
    # A cell that a spreadsheet would run as a formula is defused.
    assert json.loads(rows[0]["details"])["formula"] == "=1+1"
    assert not rows[0]["details"].startswith("=")


async def test_an_empty_match_is_a_header_only_csv(client, world):
    response = await _export(client, world["admin_a"], format="csv", action="nothing.here")
    assert response.status_code == 200
    assert response.text.strip() == ",".join(audit_export.FIELDS)


async def test_chunks_page_through_every_record_once(world, state, factory):
    tenant = await factory.tenant()
    ids = await _seed(
        state,
        tenant.id,
        [(X, "event.create", "10.0.0.1", 0)] * 5  # ties across a chunk boundary
        + [(X, "event.create", "10.0.0.1", m) for m in range(1, 6)],
    )
    flt = audit_export.AuditFilter(action="event.create")
    chunks = [c async for c in audit_export.chunks(state.db, tenant.id, flt, size=3)]
    assert [len(c) for c in chunks] == [3, 3, 3, 1]
    got = [str(row.id) for chunk in chunks for row in chunk]
    assert sorted(got) == sorted(ids)
    assert len(set(got)) == len(ids)


async def test_other_tenants_records_never_appear(client, world):
    response = await _export(client, world["admin_b"], format="jsonl")
    assert response.status_code == 200
    got = set(_jsonl_ids(response))
    assert world["b"][0] in got
    assert not got & set(world["a"])


async def test_non_admins_are_refused(client, world):
    response = await _export(client, world["mod_a"], format="csv")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_role"


async def test_without_a_session_it_is_401(client, world):
    response = await client.get("/api/tenant/audit/export")
    assert response.status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        {"format": "xml"},
        {"actor": "not-a-uuid"},
        {"since": "yesterday"},
        {"since": "2026-11-01T12:00:00"},
        {"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"},
        {"action": "x" * 65},
    ],
)
async def test_bad_filters_are_a_422_json_error(client, world, params):
    response = await _export(client, world["admin_a"], **params)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"]
    assert error["message"]


async def test_the_audit_list_takes_the_same_filters(client, world):
    params = {
        "actor": str(X),
        "ip": "10.0.0.1",
        "since": (T0 + dt.timedelta(minutes=1)).isoformat(),
        "until": (T0 + dt.timedelta(minutes=3, seconds=30)).isoformat(),
    }
    listed = await client.get(
        "/api/auth/audit",
        params={"scope": "tenant", **params},
        headers=world["admin_a"].headers,
    )
    assert listed.status_code == 200, listed.text
    exported = await _export(client, world["admin_a"], format="jsonl", **params)
    # The list is newest first, the export oldest first: the same records.
    assert [r["id"] for r in listed.json()["items"]] == _jsonl_ids(exported)[::-1]
    assert _jsonl_ids(exported) == [world["a"][2], world["a"][3]]
    bad = await client.get(
        "/api/auth/audit",
        params={"scope": "tenant", "since": "2026-11-01T00:00:00"},
        headers=world["admin_a"].headers,
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_filter"


async def test_an_export_is_itself_audited(client, world):
    admin = world["admin_a"]
    response = await _export(client, admin, format="jsonl", action="event.delete")
    assert response.status_code == 200
    listed = await client.get(
        "/api/auth/audit",
        params={"scope": "tenant", "action": "tenant.audit_export"},
        headers=admin.headers,
    )
    [record] = listed.json()["items"]
    assert record["actor_id"] == str(admin.user.id)
    assert record["details"] == {"format": "jsonl", "filters": {"action": "event.delete"}}
    # A refused export leaves no such record.
    await _export(client, world["mod_a"], format="csv")
    again = await client.get(
        "/api/auth/audit",
        params={"scope": "tenant", "action": "tenant.audit_export"},
        headers=admin.headers,
    )
    assert len(again.json()["items"]) == 1
