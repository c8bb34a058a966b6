"""The admin console's audit log (filters, a record, exports of the current filter) and sign-in
settings (saved through the tenant settings service, validated, audited, step-up for MFA), in
process on both backends."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid

import httpx
from sqlalchemy import select

from bigfootlive.authz.roles import Role
from bigfootlive.composition import AppState
from bigfootlive.models import AuditRecord, Tenant
from bigfootlive.tenants import service as tenants
from tests.fixtures.factories import Factory
from tests.web.test_pages import HTML, _csrf, _signin

SETTINGS_FORM = {
    "min_length": "14",
    "history": "3",
    "threshold": "4",
    "base_delay_seconds": "20",
    "max_delay_seconds": "600",
    "mfa_mode": "optional",
    "allowed_factors": ["totp", "webauthn", "email", "sms"],
    "allow_backup_codes": "true",
    "default_role": "streamer",
    "require_digit": "true",
    "allow_self_registration": "true",
}


async def _records(state: AppState, tenant_id: uuid.UUID, action: str) -> list[AuditRecord]:
    async with state.db.sessionmaker() as session:
        rows = await session.execute(
            select(AuditRecord).where(
                AuditRecord.tenant_id == tenant_id, AuditRecord.action == action
            )
        )
        return list(rows.scalars())


async def test_audit_filters_record_and_exports(
    client: httpx.AsyncClient, factory: Factory, state: AppState
):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN, login=False)
    members = [await factory.user(tenant) for _ in range(3)]  # three auth.login records
    other = await factory.user(await factory.tenant())  # another tenant's login
    await _signin(client, tenant.slug, admin.user.email)
    logins = await _records(state, tenant.id, "auth.login")
    assert len(logins) == 4  # the members' and the admin's

    listing = await client.get("/admin/audit", params={"action": "auth.login"}, headers=HTML)
    assert listing.status_code == 200
    shown = set(re.findall(r'href="/admin/audit/([0-9a-f-]{36})"', listing.text))
    assert shown == {str(r.id) for r in logins}
    by_actor = await client.get(
        "/admin/audit", params={"actor": str(members[0].user.id)}, headers=HTML
    )
    assert set(re.findall(r'href="/admin/audit/([0-9a-f-]{36})"', by_actor.text)) == {
        str(r.id) for r in logins if r.actor_id == members[0].user.id
    }
    bad = await client.get("/admin/audit", params={"since": "yesterday"}, headers=HTML)
    assert bad.status_code == 422
    assert "not a date" in bad.text
    backwards = await client.get(
        "/admin/audit", params={"since": "2026-12-02T10:00", "until": "2026-12-01T10:00"},
        headers=HTML,
    )  # fmt: skip
    assert backwards.status_code == 422

    record = await client.get(f"/admin/audit/{logins[0].id}", headers=HTML)
    assert record.status_code == 200
    assert "auth.login" in record.text
    foreign = (await _records(state, other.tenant.id, "auth.login"))[0]
    assert (await client.get(f"/admin/audit/{foreign.id}", headers=HTML)).status_code == 404

    link = re.search(r'href="([^"]+)" download id="export-csv"', listing.text)
    assert link
    exported = await client.get(link.group(1).replace("&amp;", "&"), headers=HTML)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sorted(r["id"] for r in rows) == sorted(str(r.id) for r in logins)
    assert {r["action"] for r in rows} == {"auth.login"}
    jsonl = await client.get(
        "/admin/audit/export", params={"format": "jsonl", "action": "auth.login"}, headers=HTML
    )
    lines = [json.loads(line) for line in jsonl.text.splitlines()]
    assert sorted(r["id"] for r in lines) == sorted(str(r.id) for r in logins)
    exports = await _records(state, tenant.id, "tenant.audit_export")
    assert len(exports) == 2
    assert exports[0].details["filters"] == {"action": "auth.login"}

    moderator = await factory.user(tenant, role=Role.MODERATOR, login=False)
    client.cookies.clear()
    await _signin(client, tenant.slug, moderator.user.email)
    for path in ("/admin/audit", "/admin/audit/export", f"/admin/audit/{logins[0].id}"):
        assert (await client.get(path, headers=HTML)).status_code == 403


async def _tenant(state: AppState, tenant_id: uuid.UUID) -> Tenant:
    async with state.db.sessionmaker() as session:
        found = await tenants.get_tenant(session, tenant_id)
        assert found is not None
        return found


async def test_sign_in_settings(client: httpx.AsyncClient, factory: Factory, state: AppState):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN, login=False)
    await _signin(client, tenant.slug, admin.user.email)
    form = await client.get("/admin/sign-in-settings", headers=HTML)
    assert form.status_code == 200
    assert 'name="min_length"' in form.text
    saved = await client.post(
        "/admin/sign-in-settings", data={"csrf_token": _csrf(form), **SETTINGS_FORM}, headers=HTML
    )
    assert saved.status_code == 303, saved.text
    settings = tenants.settings_of(await _tenant(state, tenant.id))
    assert settings.password_policy.min_length == 14
    assert settings.password_policy.require_digit
    assert not settings.password_policy.require_upper
    assert settings.lockout.threshold == 4
    assert settings.allow_self_registration
    assert settings.default_role == Role.STREAMER
    [change] = await _records(state, tenant.id, "tenant.settings_change")
    assert "settings.password_policy" in change.details["changed"]
    assert "settings.mfa" not in change.details["changed"]
    # Registration follows the new setting (the page of part 1).
    assert "closed" not in (await client.get(f"/register?tenant={tenant.slug}")).text.lower()

    invalid = await client.post(
        "/admin/sign-in-settings",
        data={"csrf_token": _csrf(form), **SETTINGS_FORM, "min_length": "4"},
        headers=HTML,
    )
    assert invalid.status_code == 422
    assert "min_length" in invalid.text
    no_factor = await client.post(
        "/admin/sign-in-settings",
        data={"csrf_token": _csrf(form), **{**SETTINGS_FORM, "allowed_factors": []}},
        headers=HTML,
    )
    assert no_factor.status_code == 422

    state.settings.mfa_step_up_max_age_seconds = 0
    required = {**SETTINGS_FORM, "mfa_mode": "required_for_roles", "mfa_roles": ["admin"]}
    asked = await client.post(
        "/admin/sign-in-settings", data={"csrf_token": _csrf(form), **required}, headers=HTML
    )
    assert asked.status_code == 401
    assert 'action="/admin/step-up"' in asked.text
    assert tenants.settings_of(await _tenant(state, tenant.id)).mfa.mode == "optional"
    state.settings.mfa_step_up_max_age_seconds = 300
    done = await client.post(
        "/admin/sign-in-settings", data={"csrf_token": _csrf(form), **required}, headers=HTML
    )
    assert done.status_code == 303
    mfa = tenants.settings_of(await _tenant(state, tenant.id)).mfa
    assert (mfa.mode, mfa.roles) == ("required_for_roles", [Role.ADMIN])
