"""Per-IP rate limits on the sign-in endpoints (a low limit set for this module)."""

from __future__ import annotations

import pytest

from tests.identity.test_login import _login


@pytest.fixture
def settings_overrides():
    return {
        "login_rate_limit": "5/minute",
        "register_rate_limit": "3/minute",
        "reset_rate_limit": "2/minute",
    }


async def test_login_is_rate_limited_per_ip(client, factory):
    tenant = await factory.tenant(lockout={"threshold": 50})
    codes = [
        (await _login(client, tenant, f"user{i}@example.com", "wrong-password-xyz")).status_code
        for i in range(7)
    ]
    assert codes[:5] == [401] * 5
    assert codes[5:] == [429, 429]


async def test_register_is_rate_limited_per_ip(client, factory):
    tenant = await factory.tenant(allow_self_registration=True)
    codes = []
    for i in range(5):
        response = await client.post(
            "/api/auth/register",
            json={
                "tenant": tenant.slug,
                "email": f"r{i}@example.com",
                "password": "plausible-tundra-velvet-42",
                "display_name": "R",
            },
        )
        codes.append(response.status_code)
    assert codes == [202, 202, 202, 429, 429]


async def test_password_reset_requests_are_rate_limited(client, factory, smtp_sink):
    tenant = await factory.tenant()
    ann = await factory.user(tenant, login=False)
    codes = [
        (
            await client.post(
                "/api/auth/password/forgot", json={"tenant": tenant.slug, "email": ann.user.email}
            )
        ).status_code
        for _ in range(3)
    ]
    assert codes == [202, 202, 429]
