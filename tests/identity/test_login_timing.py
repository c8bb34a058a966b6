"""Unknown accounts cost a full password hash, like known ones (production parameters): at sign-in
and at registration. Measured in CPU time of this process (the app runs in it, its hashing
threads too): wall time on a loaded machine measured the neighbours as much as the hash."""

from __future__ import annotations

import time

import pytest

from tests.identity.test_login import _login


@pytest.fixture
def settings_overrides():
    return {"argon2_memory_kib": 19_456, "argon2_time_cost": 2}


async def test_unknown_user_costs_a_password_hash_like_a_known_one(client, factory):
    tenant = await factory.tenant()
    ann = await factory.user(tenant, login=False)
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    for _ in range(3):  # alternated, and the cheapest of each kept: a neighbour's burst or a
        # first hash's page faults land in one attempt, not in what a path costs
        for label, email in (("known", ann.user.email), ("unknown", "ghost@example.com")):
            start = time.process_time()
            await _login(client, tenant, email, "not-the-password-at-all")
            timings[label].append(time.process_time() - start)
    # Both paths run one argon2 verification; neither is an order of magnitude faster.
    assert min(timings["unknown"]) > min(timings["known"]) / 3, timings


async def test_registering_a_taken_address_costs_a_password_hash_like_a_new_one(client, factory):
    tenant = await factory.tenant(allow_self_registration=True)
    ann = await factory.user(tenant, login=False)
    timings = {}
    for label, emails in (
        ("new", [f"new{i}@example.com" for i in range(3)]),
        ("taken", [ann.user.email] * 3),
    ):
        start = time.process_time()
        for email in emails:
            response = await client.post(
                "/api/auth/register",
                json={
                    "tenant": tenant.slug,
                    "email": email,
                    "password": "another-plausible-secret-77",
                    "display_name": "New",
                },
            )
            assert response.status_code == 202, response.text
        timings[label] = time.process_time() - start
    assert timings["taken"] > timings["new"] / 3
