"""Password sign-in: same answer for unknown and wrong, lockout, rate limits, hash upgrade."""

from __future__ import annotations

import bcrypt
import pytest
from sqlalchemy import select, update

from bigfootlive.models import AuditRecord, User
from tests.fixtures.clock import ManualClock
from tests.fixtures.factories import PASSWORD

# The lockout tests sign in wrongly more often than the per-IP rate limit allows.
MANY_ATTEMPTS = pytest.mark.parametrize("settings_overrides", [{"login_rate_limit": "500/minute"}])


def _login(client, tenant, email, password=PASSWORD, **extra):
    body = {
        "tenant": tenant.slug if tenant else None,
        "email": email,
        "password": password,
        **extra,
    }
    return client.post("/api/auth/login", json=body)


async def _audit(state, action):
    async with state.db.sessionmaker() as session:
        rows = await session.execute(
            select(AuditRecord).where(AuditRecord.action == action).order_by(AuditRecord.created_at)
        )
        return list(rows.scalars())


async def test_login_returns_tokens_and_records_the_session(client, factory, state):
    tenant = await factory.tenant("acme")
    ann = await factory.user(tenant, login=False)
    response = await _login(client, tenant, ann.user.email)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["user"]["email"] == ann.user.email
    assert body["user"]["tenant_slug"] == "acme"
    me = await client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.json()["id"] == ann.id
    [record] = await _audit(state, "auth.login")
    assert record.result == "success"
    assert record.actor_id == ann.user.id
    assert record.ip == "203.0.113.7"
    assert record.request_id == response.headers["x-request-id"]


async def test_unknown_user_and_wrong_password_get_the_same_answer(client, factory):
    tenant = await factory.tenant()
    ann = await factory.user(tenant, login=False)
    wrong = await _login(client, tenant, ann.user.email, "not-the-password-at-all")
    unknown = await _login(client, tenant, "nobody@example.com", "not-the-password-at-all")
    no_tenant = await _login(client, None, "nobody@nowhere.example", "not-the-password-at-all")
    assert wrong.status_code == unknown.status_code == no_tenant.status_code == 401
    assert wrong.json() == unknown.json() == no_tenant.json()
    assert wrong.json()["error"]["code"] == "invalid_credentials"


async def test_tenant_is_found_by_email_domain(client, factory):
    tenant = await factory.tenant("acme", domains=["acme.com"])
    await factory.user(tenant, email="ann@acme.com", login=False)
    response = await _login(client, None, "ann@acme.com")
    assert response.status_code == 200
    assert response.json()["user"]["tenant_slug"] == "acme"


async def test_account_locks_after_the_tenant_threshold_even_for_the_right_password(
    client, factory, state
):
    tenant = await factory.tenant(lockout={"threshold": 3, "base_delay_seconds": 60})
    ann = await factory.user(tenant, login=False)
    for _ in range(3):
        assert (
            await _login(client, tenant, ann.user.email, "wrong-password-xyz")
        ).status_code == 401
    locked = await _login(client, tenant, ann.user.email)
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "account_locked"
    assert int(locked.headers["retry-after"]) > 0
    [lockout] = await _audit(state, "auth.lockout")
    assert lockout.target_id == ann.id
    assert lockout.details["failures"] == 3


async def test_a_successful_sign_in_forgets_the_failures_before_it(client, factory):
    """Failures below the threshold, then the right password: they are forgotten (the sign-in
    deletes the record it found), so as many failures again do not lock the account."""
    tenant = await factory.tenant(lockout={"threshold": 3, "base_delay_seconds": 60})
    ann = await factory.user(tenant, login=False)
    for _ in range(2):
        assert (
            await _login(client, tenant, ann.user.email, "wrong-password-xyz")
        ).status_code == 401
    assert (await _login(client, tenant, ann.user.email)).status_code == 200
    for _ in range(2):
        assert (
            await _login(client, tenant, ann.user.email, "wrong-password-xyz")
        ).status_code == 401
    assert (await _login(client, tenant, ann.user.email)).status_code == 200


async def test_lock_delay_grows_with_further_failures(client, factory, state):
    tenant = await factory.tenant(lockout={"threshold": 3, "base_delay_seconds": 10})
    ann = await factory.user(tenant, login=False)
    state.clock = clock = ManualClock()
    for _ in range(3):
        await _login(client, tenant, ann.user.email, "wrong-password-xyz")
    clock.advance(10)  # the first lock is over
    await _login(client, tenant, ann.user.email, "wrong-password-xyz")
    locked = await _login(client, tenant, ann.user.email)
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == "20"
    lockouts = await _audit(state, "auth.lockout")
    assert [r.details["locked_seconds"] for r in lockouts] == [10, 20]


async def _attempt(client, tenant, email) -> tuple[int, dict, str | None]:
    response = await _login(client, tenant, email, "wrong-password-xyz")
    return response.status_code, response.json(), response.headers.get("retry-after")


@MANY_ATTEMPTS
async def test_known_and_unknown_addresses_lock_count_down_and_unlock_alike(client, factory, state):
    tenant = await factory.tenant(lockout={"threshold": 5, "base_delay_seconds": 30})
    ann = await factory.user(tenant, login=False)
    state.clock = clock = ManualClock()
    seen: dict[str, list[tuple[int, dict, str | None]]] = {
        ann.user.email: [],
        "ghost@example.com": [],
    }

    async def both_try() -> None:
        for email, answers in seen.items():
            answers.append(await _attempt(client, tenant, email))

    for _ in range(5):  # the fifth failure locks for 30 s
        await both_try()
    await both_try()
    clock.advance(3)
    await both_try()
    clock.advance(26.5)
    await both_try()
    clock.advance(0.5)  # the lock is over: the next failure locks for twice as long
    await both_try()
    await both_try()
    clock.advance(60)
    await both_try()
    await both_try()

    known, unknown = seen.values()
    assert known == unknown
    assert [(status, retry_after) for status, _, retry_after in known] == [
        *[(401, None)] * 5,
        (429, "30"),
        (429, "27"),
        (429, "1"),
        (401, None),
        (429, "60"),
        (401, None),
        (429, "120"),
    ]
    assert {body["error"]["code"] for status, body, _ in known if status == 401} == {
        "invalid_credentials"
    }
    assert [body["error"]["retry_after"] for status, body, _ in known if status == 429] == [
        30,
        27,
        1,
        60,
        120,
    ]
    clock.advance(120)
    assert (await _login(client, tenant, ann.user.email)).status_code == 200


@MANY_ATTEMPTS
async def test_failures_are_forgotten_after_a_quiet_period_for_any_address(client, factory, state):
    tenant = await factory.tenant(
        lockout={"threshold": 3, "base_delay_seconds": 10, "max_delay_seconds": 60}
    )
    ann = await factory.user(tenant, login=False)
    state.clock = clock = ManualClock()
    for email in (ann.user.email, "ghost@example.com"):
        for _ in range(3):
            await _attempt(client, tenant, email)
        assert (await _attempt(client, tenant, email))[2] == "10"
    clock.advance(10 + 60)  # the lock, then as long again as the longest lock
    for email in (ann.user.email, "ghost@example.com"):
        answers = [await _attempt(client, tenant, email) for _ in range(4)]
        # Counting starts again: three failures lock for the base delay, not a doubled one.
        assert [(status, retry_after) for status, _, retry_after in answers] == [
            (401, None),
            (401, None),
            (401, None),
            (429, "10"),
        ]


async def test_unknown_accounts_lock_like_known_ones(client, factory):
    tenant = await factory.tenant(lockout={"threshold": 3})
    for _ in range(3):
        assert (
            await _login(client, tenant, "ghost@example.com", "wrong-pw-123456")
        ).status_code == 401
    assert (await _login(client, tenant, "ghost@example.com", "wrong-pw-123456")).status_code == 429


async def test_successful_login_resets_the_failure_count(client, factory, state):
    tenant = await factory.tenant(lockout={"threshold": 3})
    ann = await factory.user(tenant, login=False)
    for _ in range(2):
        await _login(client, tenant, ann.user.email, "wrong-password-xyz")
    assert (await _login(client, tenant, ann.user.email)).status_code == 200
    for _ in range(2):
        await _login(client, tenant, ann.user.email, "wrong-password-xyz")
    assert (await _login(client, tenant, ann.user.email)).status_code == 200


async def test_legacy_bcrypt_hash_is_verified_and_upgraded_to_argon2(client, factory, state):
    tenant = await factory.tenant()
    ann = await factory.user(tenant, login=False)
    legacy = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    async with state.db.transaction() as session:
        await session.execute(
            update(User).where(User.id == ann.user.id).values(password_hash=legacy)
        )
    assert (await _login(client, tenant, ann.user.email)).status_code == 200
    async with state.db.sessionmaker() as session:
        user = (await session.execute(select(User).where(User.id == ann.user.id))).scalar_one()
    assert user.password_hash is not None
    assert user.password_hash.startswith("$argon2id$")
    assert (await _login(client, tenant, ann.user.email)).status_code == 200


async def test_disabled_account_cannot_sign_in(client, factory, state):
    tenant = await factory.tenant()
    ann = await factory.user(tenant, login=False)
    async with state.db.transaction() as session:
        await session.execute(update(User).where(User.id == ann.user.id).values(is_active=False))
    response = await _login(client, tenant, ann.user.email)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "account_disabled"


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "password": "x"},
        {"email": "a@example.com"},
        {"email": "a@example.com", "password": "x", "unexpected": True},
        {"email": "a@example.com", "password": "x" * 129},
        [],
    ],
)
async def test_malformed_login_bodies_get_422(client, body):
    response = await client.post("/api/auth/login", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
