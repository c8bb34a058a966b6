"""Sign-in and enrolment steps through the real API, shared by the MFA tests."""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from typing import Any

import httpx
import pyotp
from sqlalchemy import select

from bigfootlive.composition import AppState
from bigfootlive.models import AuditRecord
from tests.fixtures.factories import Account
from tests.fixtures.services import SMTPSink, body_of


def totp_code(secret: str, steps_ahead: int = 0) -> str:
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(int(time.time()) // 30 + steps_ahead)


async def password_login(client: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    response = await client.post(
        "/api/auth/login",
        json={
            "tenant": account.tenant.slug,
            "email": account.user.email,
            "password": account.password,
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def use_tokens(account: Account, body: dict[str, Any]) -> None:
    account.access_token = body["access_token"]
    account.refresh_token = body.get("refresh_token", account.refresh_token)
    account.session_id = body.get("session_id", account.session_id)


async def enrol_totp(client: httpx.AsyncClient, account: Account) -> tuple[str, str, list[str]]:
    """(factor id, TOTP secret, backup codes) for a confirmed authenticator app."""
    setup = await client.post(
        "/api/auth/mfa/setup", json={"type": "totp", "name": "Phone"}, headers=account.headers
    )
    assert setup.status_code == 201, setup.text
    body = setup.json()
    secret = body["totp"]["secret"]
    confirm = await client.post(
        "/api/auth/mfa/setup/confirm",
        json={"factor_id": body["factor"]["id"], "code": totp_code(secret)},
        headers=account.headers,
    )
    assert confirm.status_code == 200, confirm.text
    return body["factor"]["id"], secret, confirm.json()["backup_codes"] or []


async def verify(client: httpx.AsyncClient, token: str, **fields: Any) -> httpx.Response:
    return await client.post("/api/auth/mfa/verify", json={"challenge_token": token, **fields})


async def audit_actions(state: AppState, user_id: uuid.UUID | str) -> list[tuple[str, str]]:
    """(action, result) of every audit record by or about the user, oldest first."""
    async with state.db.sessionmaker() as session:
        rows = await session.execute(
            select(AuditRecord.action, AuditRecord.result)
            .where(
                (AuditRecord.actor_id == uuid.UUID(str(user_id)))
                | (AuditRecord.target_id == str(user_id))
            )
            .order_by(AuditRecord.created_at)
        )
        return [(a, r) for a, r in rows.all()]


async def emailed_code(smtp: SMTPSink, address: str, count: int) -> str:
    messages = await smtp.wait_for(address, count=count)
    match = re.search(r"\b(\d{6})\b", body_of(messages[count - 1]))
    assert match, body_of(messages[count - 1])
    return match.group(1)


def stale_token(state: AppState, account: Account, amr: list[str], age: int = 3600) -> str:
    """An access token of the account's session whose last verification was `age` s ago."""
    claims = state.tokens.decode(account.access_token)
    token, _ = state.tokens.issue(
        user_id=claims.user_id,
        tenant_id=claims.tenant_id,
        session_id=claims.session_id,
        roles=list(claims.roles),
        amr=amr,
        auth_time=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=age),
    )
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def mfa_login(client: httpx.AsyncClient, account: Account, secret: str) -> None:
    """Sign in with password + TOTP and keep the tokens on the account."""
    challenge = await password_login(client, account)
    assert challenge["status"] == "mfa_required", challenge
    step = int(time.time()) // 30
    for ahead in (1, 0, -1, 2):  # a step not used yet by this test
        response = await verify(
            client,
            challenge["challenge_token"],
            method="totp",
            code=pyotp.TOTP(secret).generate_otp(step + ahead),
        )
        if response.status_code == 200:
            use_tokens(account, response.json())
            return
    raise AssertionError(response.text)
