"""Registration, email verification, password change and reset (emails read from real SMTP)."""

from __future__ import annotations

import re

from sqlalchemy import select, text

from bigfootlive.models import AuditRecord
from tests.fixtures.factories import PASSWORD
from tests.fixtures.services import body_of

NEW_PASSWORD = "another-plausible-secret-77"


def _token_from(message) -> str:
    match = re.search(r"token=([A-Za-z0-9_\-]+)", body_of(message))
    assert match, body_of(message)
    return match.group(1)


def _register(client, tenant_slug, email, password=PASSWORD):
    return client.post(
        "/api/auth/register",
        json={"tenant": tenant_slug, "email": email, "password": password, "display_name": "New"},
    )


def _login(client, tenant_slug, email, password=PASSWORD):
    return client.post(
        "/api/auth/login", json={"tenant": tenant_slug, "email": email, "password": password}
    )


async def _user_count(state) -> int:
    async with state.db.sessionmaker() as session:
        return int((await session.execute(text("SELECT count(*) FROM users"))).scalar_one())


async def test_self_registration_creates_the_account_once_the_address_is_confirmed(
    client, factory, smtp_sink, state
):
    tenant = await factory.tenant(allow_self_registration=True)
    response = await _register(client, tenant.slug, "newbie@example.com")
    assert response.status_code == 202
    assert response.json() == {"status": "verification_sent"}
    # No account until the address is confirmed: signing in fails like for any unknown address.
    early = await _login(client, tenant.slug, "newbie@example.com")
    assert early.status_code == 401
    assert early.json()["error"]["code"] == "invalid_credentials"
    assert await _user_count(state) == 0

    [mail] = await smtp_sink.wait_for("newbie@example.com")
    token = _token_from(mail)
    assert (await client.post("/api/auth/email/verify", json={"token": token})).status_code == 204
    signed_in = await _login(client, tenant.slug, "newbie@example.com")
    assert signed_in.status_code == 200, signed_in.text
    user = signed_in.json()["user"]
    assert (user["role"], user["email_verified"], user["display_name"]) == ("viewer", True, "New")
    again = await client.post("/api/auth/email/verify", json={"token": token})
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "invalid_token"


async def test_registering_twice_before_confirming_spends_the_other_link(
    client, factory, smtp_sink, state
):
    tenant = await factory.tenant(allow_self_registration=True)
    for _ in range(2):
        assert (await _register(client, tenant.slug, "twice@example.com")).status_code == 202
    first, second = (_token_from(m) for m in await smtp_sink.wait_for("twice@example.com", 2))
    assert (await client.post("/api/auth/email/verify", json={"token": second})).status_code == 204
    spent = await client.post("/api/auth/email/verify", json={"token": first})
    assert spent.status_code == 400
    assert await _user_count(state) == 1


async def test_registering_an_existing_address_answers_like_a_new_one_and_tells_the_owner(
    client, factory, smtp_sink, state
):
    tenant = await factory.tenant(allow_self_registration=True)
    ann = await factory.user(tenant, login=False)
    new = await _register(client, tenant.slug, "newbie@example.com", NEW_PASSWORD)
    taken = await _register(client, tenant.slug, ann.user.email.upper(), NEW_PASSWORD)
    assert new.status_code == taken.status_code == 202
    assert new.content == taken.content
    assert {k: v for k, v in new.headers.items() if k != "x-request-id"} == {
        k: v for k, v in taken.headers.items() if k != "x-request-id"
    }
    # The attempt changed nothing: the owner's password still works, the attempt's does not.
    assert (await _login(client, tenant.slug, ann.user.email)).status_code == 200
    assert (await _login(client, tenant.slug, ann.user.email, NEW_PASSWORD)).status_code == 401
    assert await _user_count(state) == 1
    # The owner hears of it, with a way back in if it was them.
    [notice] = await smtp_sink.wait_for(ann.user.email)
    assert notice["Subject"] == "Someone tried to register with your address"
    assert "sign in" in body_of(notice)
    reset = await client.post(
        "/api/auth/password/reset",
        json={"token": _token_from(notice), "new_password": "yet-another-secret-99"},
    )
    assert reset.status_code == 204
    assert (
        await _login(client, tenant.slug, ann.user.email, "yet-another-secret-99")
    ).status_code == 200
    [mail] = await smtp_sink.wait_for("newbie@example.com")
    assert "confirm your email address" in body_of(mail)


async def test_registration_is_refused_alike_where_the_tenant_does_not_allow_it(
    client, factory, smtp_sink
):
    tenant = await factory.tenant()
    ann = await factory.user(tenant, login=False)
    new = await _register(client, tenant.slug, "newbie@example.com")
    taken = await _register(client, tenant.slug, ann.user.email)
    assert new.status_code == taken.status_code == 403
    assert new.json() == taken.json()
    assert new.json()["error"]["code"] == "registration_disabled"
    assert smtp_sink.messages == []


async def test_registration_for_an_unknown_tenant_is_404(client):
    response = await _register(client, "no-such-tenant", "newbie@example.com")
    assert response.status_code == 404


async def test_common_and_short_passwords_are_rejected_by_policy(client, factory, state):
    tenant = await factory.tenant(allow_self_registration=True)
    for password in ("123456789qwerty", "1234qwerasdf", "short"):
        response = await _register(client, tenant.slug, "weak@example.com", password)
        assert response.status_code == 422, password
        assert response.json()["error"]["code"] == "weak_password"
    async with state.db.sessionmaker() as session:
        assert (await session.execute(text("SELECT count(*) FROM users"))).scalar_one() == 0
        pending = text("SELECT count(*) FROM pending_registrations")
        assert (await session.execute(pending)).scalar_one() == 0


async def test_character_rules_apply_when_the_tenant_turns_them_on(client, factory):
    tenant = await factory.tenant(
        allow_self_registration=True,
        password_policy={"require_upper": True, "require_digit": True, "require_symbol": True},
    )
    weak = await _register(client, tenant.slug, "a@example.com", "all-lowercase-letters")
    assert weak.status_code == 422
    assert len(weak.json()["error"]["problems"]) == 2
    assert (
        await _register(client, tenant.slug, "b@example.com", "Mixed-Case-and-7")
    ).status_code == 202


async def test_password_change_needs_the_current_password(client, factory):
    ann = await factory.user(await factory.tenant())
    response = await client.post(
        "/api/auth/password",
        json={"current_password": "wrong-one-entirely", "new_password": NEW_PASSWORD},
        headers=ann.headers,
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_current_password"


async def test_password_change_ends_other_sessions_and_notifies(client, factory, smtp_sink):
    ann = await factory.user(await factory.tenant())
    other_headers = dict(ann.headers)
    await factory.login(ann)
    response = await client.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=ann.headers,
    )
    assert response.status_code == 204
    assert (await client.get("/api/auth/me", headers=other_headers)).status_code == 401
    assert (await client.get("/api/auth/me", headers=ann.headers)).status_code == 200
    [mail] = await smtp_sink.wait_for(ann.user.email)
    assert "password was just changed" in body_of(mail)
    ann.password = NEW_PASSWORD
    await factory.login(ann)


async def test_password_history_refuses_a_recent_password(client, factory):
    ann = await factory.user(await factory.tenant())
    first = await client.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=ann.headers,
    )
    assert first.status_code == 204
    back = await client.post(
        "/api/auth/password",
        json={"current_password": NEW_PASSWORD, "new_password": PASSWORD},
        headers=ann.headers,
    )
    assert back.status_code == 400
    assert back.json()["error"]["code"] == "password_reused"


async def test_password_reset_by_emailed_single_use_token(client, factory, smtp_sink, state):
    tenant = await factory.tenant(lockout={"threshold": 3})
    ann = await factory.user(tenant)
    for _ in range(3):  # locked out
        await client.post(
            "/api/auth/login",
            json={"tenant": tenant.slug, "email": ann.user.email, "password": "wrong-wrong-wrong"},
        )
    forgot = await client.post(
        "/api/auth/password/forgot", json={"tenant": tenant.slug, "email": ann.user.email}
    )
    assert forgot.status_code == 202
    [mail] = await smtp_sink.wait_for(ann.user.email)
    token = _token_from(mail)
    reset = await client.post(
        "/api/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert reset.status_code == 204
    # Old sessions are gone, the lock is lifted, the new password works, the link is spent.
    assert (await client.get("/api/auth/me", headers=ann.headers)).status_code == 401
    ann.password = NEW_PASSWORD
    await factory.login(ann)
    again = await client.post(
        "/api/auth/password/reset", json={"token": token, "new_password": "yet-another-secret-99"}
    )
    assert again.status_code == 400
    async with state.db.sessionmaker() as session:
        actions = (
            (
                await session.execute(
                    select(AuditRecord.action).where(AuditRecord.actor_id == ann.user.id)
                )
            )
            .scalars()
            .all()
        )
    assert "auth.password_reset" in actions


async def test_reset_with_a_weak_password_keeps_the_token_usable(client, factory, smtp_sink):
    tenant = await factory.tenant()
    ann = await factory.user(tenant, login=False)
    await client.post(
        "/api/auth/password/forgot", json={"tenant": tenant.slug, "email": ann.user.email}
    )
    token = _token_from((await smtp_sink.wait_for(ann.user.email))[0])
    weak = await client.post("/api/auth/password/reset", json={"token": token, "new_password": "x"})
    assert weak.status_code == 422
    ok = await client.post(
        "/api/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert ok.status_code == 204


async def test_forgot_password_for_an_unknown_email_answers_the_same_and_sends_nothing(
    client, factory, smtp_sink
):
    tenant = await factory.tenant()
    response = await client.post(
        "/api/auth/password/forgot", json={"tenant": tenant.slug, "email": "ghost@example.com"}
    )
    assert response.status_code == 202
    assert response.json() == {"status": "accepted"}
    assert smtp_sink.to("ghost@example.com") == []


async def test_audit_lists_own_records_and_tenant_scope_needs_admin(client, factory):
    from bigfootlive.authz.roles import Role

    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    admin = await factory.user(tenant, role=Role.ADMIN)
    own = await client.get("/api/auth/audit", headers=ann.headers)
    assert own.status_code == 200
    assert {r["action"] for r in own.json()["items"]} == {"auth.login"}
    assert all(r["actor_id"] == ann.id for r in own.json()["items"])
    assert (
        await client.get("/api/auth/audit?scope=tenant", headers=ann.headers)
    ).status_code == 403
    everyone = await client.get("/api/auth/audit?scope=tenant&limit=1", headers=admin.headers)
    assert everyone.status_code == 200
    assert len(everyone.json()["items"]) == 1
    assert everyone.json()["next_cursor"]
    page2 = await client.get(
        f"/api/auth/audit?scope=tenant&limit=1&cursor={everyone.json()['next_cursor']}",
        headers=admin.headers,
    )
    assert page2.json()["items"][0]["id"] != everyone.json()["items"][0]["id"]


async def test_audit_records_cannot_be_altered(factory, state):
    import pytest
    from sqlalchemy.exc import DBAPIError

    ann = await factory.user(await factory.tenant())
    for statement in ("UPDATE audit_records SET action = 'x'", "DELETE FROM audit_records"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with state.db.transaction() as session:
                await session.execute(text(statement))
    async with state.db.sessionmaker() as session:
        actions = (await session.execute(select(AuditRecord.action))).scalars().all()
    assert actions == ["auth.login"]
    assert ann
