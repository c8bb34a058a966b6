"""The admin console's member actions in process, on both backends: invite (email, accept page,
signed in), role and status changes (audited, sessions ended), MFA reset and ending sessions
with their confirmation pages, filters, the step-up page, and another tenant's ids."""

from __future__ import annotations

import re
import uuid

import httpx
from sqlalchemy import select

from bigfootlive.authz.roles import Role
from bigfootlive.composition import AppState
from bigfootlive.models import AuditRecord
from bigfootlive.web.session import SESSION_COOKIE
from tests.fixtures.factories import PASSWORD, Factory
from tests.fixtures.services import SMTPSink, body_of
from tests.web.test_pages import HTML, _csrf, _signin

NEW_PASSWORD = "a-brand-new-secret-4471"


async def _post(client: httpx.AsyncClient, page_path: str, action: str, **data: str):
    form = await client.get(page_path, headers=HTML)
    assert form.status_code == 200, form.text
    return await client.post(action, data={"csrf_token": _csrf(form), **data}, headers=HTML)


async def _actions(state: AppState, tenant_id: uuid.UUID) -> list[str]:
    async with state.db.sessionmaker() as session:
        rows = await session.execute(
            select(AuditRecord.action)
            .where(AuditRecord.tenant_id == tenant_id)
            .order_by(AuditRecord.created_at)
        )
        return list(rows.scalars())


async def test_invite_accept_and_sign_in(
    client: httpx.AsyncClient, factory: Factory, smtp_sink: SMTPSink, state: AppState
):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN, login=False)
    await _signin(client, tenant.slug, admin.user.email)
    sent = await _post(
        client, "/admin/users/new", "/admin/users",
        email="Newbie@Example.com", display_name="Newbie", role="streamer",
    )  # fmt: skip
    assert sent.status_code == 303, sent.text
    member_path = sent.headers["location"].split("?")[0]
    shown = await client.get(sent.headers["location"], headers=HTML)
    assert "Invitation sent." in shown.text
    assert "newbie@example.com" in shown.text
    assert "streamer" in shown.text
    [mail] = await smtp_sink.wait_for("newbie@example.com")
    link = re.search(r"(/invite/accept\?token=[A-Za-z0-9_\-]+)", body_of(mail))
    assert link, body_of(mail)
    assert "reset-password" not in body_of(mail)
    actions = await _actions(state, tenant.id)
    assert "tenant.user_create" in actions
    assert "tenant.user_invite" in actions

    client.cookies.clear()
    accept = await client.get(link.group(1), headers=HTML)
    assert accept.status_code == 200
    assert "newbie@example.com" in accept.text
    token = link.group(1).split("token=")[1]
    differ = await client.post(
        "/invite/accept",
        data={"csrf_token": _csrf(accept), "token": token, "password": NEW_PASSWORD,
              "password_again": NEW_PASSWORD + "x"},
        headers=HTML,
    )  # fmt: skip
    assert differ.status_code == 422
    weak = await client.post(
        "/invite/accept",
        data={"csrf_token": _csrf(accept), "token": token, "password": "short",
              "password_again": "short"},
        headers=HTML,
    )  # fmt: skip
    assert weak.status_code == 422  # the tenant's password policy
    assert "it must be at least 12 characters" in weak.text  # what to change, not only "weak"
    done = await client.post(
        "/invite/accept",
        data={"csrf_token": _csrf(accept), "token": token, "password": NEW_PASSWORD,
              "password_again": NEW_PASSWORD},
        headers=HTML,
    )  # fmt: skip
    assert done.status_code == 303, done.text
    assert client.cookies.get(SESSION_COOKIE)
    home = await client.get(done.headers["location"], headers=HTML)
    assert "Signed in as <strong>Newbie</strong>" in home.text
    assert "Welcome, Newbie: your password is set" in home.text  # was the bare home page
    again = await client.get(link.group(1), headers=HTML)
    assert again.status_code == 400  # used once
    for mangled in ("?token=garbage", "", "?token=" + "x" * 300):  # cut short by a mail program
        broken = await client.get(f"/invite/accept{mangled}", headers=HTML)
        assert broken.status_code == 400, mangled  # was 422 "Check the form"
        assert "Ask your administrator for a new invitation." in broken.text
    # The admin sees the member's session and can end it.
    client.cookies.clear()
    await _signin(client, tenant.slug, admin.user.email)
    member = await client.get(member_path, headers=HTML)
    assert "Email verified</dt><dd>yes" in member.text
    assert member.text.count('name="session_id"') == 1
    asked = await _post(client, member_path, f"{member_path}/sessions/end")
    assert asked.status_code == 200
    assert "Are you sure?" in asked.text
    ended = await client.post(
        f"{member_path}/sessions/end",
        data={"csrf_token": _csrf(asked), "confirm": "yes", "session_id": ""},
        headers=HTML,
    )
    assert ended.status_code == 303
    after = await client.get(member_path, headers=HTML)
    assert "No open session." in after.text


async def test_invitation_api(client: httpx.AsyncClient, factory: Factory, smtp_sink: SMTPSink):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    created = await client.post(
        "/api/tenant/users",
        json={"email": "api-invitee@example.com", "display_name": "Api"},
        headers=admin.headers,
    )
    assert created.status_code == 201
    user_id = created.json()["id"]
    admins = await client.get("/api/tenant/users?role=admin", headers=admin.headers)
    assert [u["id"] for u in admins.json()["items"]] == [str(admin.user.id)]
    pending = await client.get("/api/tenant/users?role=viewer&active=true", headers=admin.headers)
    assert [u["id"] for u in pending.json()["items"]] == [user_id]
    resent = await client.post(f"/api/tenant/users/{user_id}/invitation", headers=admin.headers)
    assert resent.status_code == 202
    _first, second = await smtp_sink.wait_for("api-invitee@example.com", 2)
    token = re.search(r"token=([A-Za-z0-9_\-]+)", body_of(second))
    assert token
    accepted = await client.post(
        "/api/auth/invitation/accept", json={"token": token.group(1), "password": NEW_PASSWORD}
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["user"]["email"] == "api-invitee@example.com"
    assert accepted.json()["user"]["email_verified"] is True
    twice = await client.post(f"/api/tenant/users/{user_id}/invitation", headers=admin.headers)
    assert twice.status_code == 409
    assert twice.json()["error"]["code"] == "invitation_accepted"
    bad = await client.post(
        "/api/auth/invitation/accept", json={"token": "x" * 20, "password": NEW_PASSWORD}
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_token"
    sessions = await client.get(f"/api/tenant/users/{user_id}/sessions", headers=admin.headers)
    assert sessions.status_code == 200
    assert len(sessions.json()) == 1
    sid = sessions.json()[0]["id"]
    other = await factory.user(await factory.tenant(), role=Role.ADMIN)
    member_api = f"/api/tenant/users/{user_id}"
    for path in (f"{member_api}/sessions", f"{member_api}/invitation"):
        method = client.get if path.endswith("sessions") else client.post
        hidden = await method(path, headers=other.headers)
        assert hidden.status_code == 404
    ended = await client.delete(
        f"/api/tenant/users/{user_id}/sessions/{sid}", headers=admin.headers
    )
    assert ended.status_code == 204
    gone = await client.get(f"/api/tenant/users/{user_id}/sessions", headers=admin.headers)
    assert gone.json() == []


async def test_role_status_and_mfa_reset(
    client: httpx.AsyncClient, factory: Factory, state: AppState
):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN, login=False)
    member = await factory.user(tenant, role=Role.VIEWER)
    path = f"/admin/users/{member.user.id}"
    await _signin(client, tenant.slug, admin.user.email)
    changed = await _post(client, path, f"{path}/role", role="moderator")
    assert changed.status_code == 303
    page = await client.get(changed.headers["location"], headers=HTML)
    assert 'id="member-role">moderator<' in page.text
    assert "Role changed." in page.text
    me = await client.get("/api/auth/me", headers=member.headers)
    assert me.json()["role"] == "moderator"

    asked = await _post(client, path, f"{path}/status", active="false")
    assert "Are you sure?" in asked.text
    assert (await client.get("/api/auth/me", headers=member.headers)).status_code == 200
    disabled = await client.post(
        f"{path}/status",
        data={"csrf_token": _csrf(asked), "confirm": "yes", "active": "false"},
        headers=HTML,
    )
    assert disabled.status_code == 303
    assert (await client.get("/api/auth/me", headers=member.headers)).status_code == 401
    filtered = await client.get("/admin/users", params={"status": "disabled"}, headers=HTML)
    assert str(member.user.id) in filtered.text
    assert str(admin.user.id) not in filtered.text
    by_role = await client.get("/admin/users", params={"role": "admin"}, headers=HTML)
    assert str(admin.user.id) in by_role.text
    assert str(member.user.id) not in by_role.text
    enabled = await _post(client, path, f"{path}/status", active="true")
    assert enabled.status_code == 303

    asked = await _post(client, path, f"{path}/mfa-reset")
    assert "Are you sure?" in asked.text
    reset = await client.post(
        f"{path}/mfa-reset", data={"csrf_token": _csrf(asked), "confirm": "yes"}, headers=HTML
    )
    assert reset.status_code == 303
    # The last admin stays one: refused with the API's reason, nothing changed.
    own = f"/admin/users/{admin.user.id}"
    refused = await _post(client, own, f"{own}/role", role="viewer")
    assert refused.status_code == 409
    assert "last_admin" in refused.text
    actions = await _actions(state, tenant.id)
    for action in ("tenant.role_change", "tenant.user_status", "auth.mfa.reset"):
        assert action in actions


async def test_other_tenants_ids_are_not_found(client: httpx.AsyncClient, factory: Factory):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN, login=False)
    victim = await factory.user(await factory.tenant(), role=Role.ADMIN, login=False)
    await _signin(client, tenant.slug, admin.user.email)
    form = await client.get("/admin/users", headers=HTML)
    token = _csrf(form)
    base = f"/admin/users/{victim.user.id}"
    assert (await client.get(base, headers=HTML)).status_code == 404
    for action, data in (
        ("role", {"role": "viewer"}),
        ("status", {"active": "false", "confirm": "yes"}),
        ("status", {"active": "false"}),
        ("mfa-reset", {"confirm": "yes"}),
        ("mfa-reset", {}),
        ("invitation", {}),
        ("sessions/end", {"confirm": "yes"}),
        ("sessions/end", {}),
    ):
        response = await client.post(
            f"{base}/{action}", data={"csrf_token": token, **data}, headers=HTML
        )
        assert response.status_code == 404, (action, response.status_code)


async def test_step_up_page_when_the_sign_in_is_old(
    client: httpx.AsyncClient, factory: Factory, state: AppState
):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN, login=False)
    member = await factory.user(tenant, login=False)
    path = f"/admin/users/{member.user.id}"
    await _signin(client, tenant.slug, admin.user.email)
    state.settings.mfa_step_up_max_age_seconds = 0  # every sign-in is too old
    asked = await _post(client, path, f"{path}/role", role="streamer")
    assert asked.status_code == 401
    assert 'action="/admin/step-up"' in asked.text
    assert 'name="password"' in asked.text
    wrong = await client.post(
        "/admin/step-up",
        data={"csrf_token": _csrf(asked), "method": "password", "password": "nope", "next": path},
        headers=HTML,
    )
    assert wrong.status_code in (400, 401)
    asked = await _post(client, path, f"{path}/role", role="streamer")
    answered = await client.post(
        "/admin/step-up",
        data={"csrf_token": _csrf(asked), "method": "password", "password": PASSWORD,
              "next": path},
        headers=HTML,
    )  # fmt: skip
    assert answered.status_code == 303
    assert answered.headers["location"] == path
    state.settings.mfa_step_up_max_age_seconds = 300
    done = await _post(client, path, f"{path}/role", role="streamer")
    assert done.status_code == 303
    assert "auth.mfa.step_up" in await _actions(state, tenant.id)
