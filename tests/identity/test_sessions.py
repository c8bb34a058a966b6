"""Refresh rotation and reuse detection; ending a session stops its access tokens at once."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select

from bigfootlive.models import AuditRecord, AuthSession


async def _refresh(client, token):
    return await client.post("/api/auth/refresh", json={"refresh_token": token})


async def _reuse_records(state) -> list[AuditRecord]:
    async with state.db.sessionmaker() as session:
        found = await session.execute(
            select(AuditRecord).where(AuditRecord.action == "auth.refresh_reuse")
        )
        return list(found.scalars().all())


async def test_refresh_rotates_the_refresh_token(client, factory):
    ann = await factory.user(await factory.tenant())
    first = await _refresh(client, ann.refresh_token)
    assert first.status_code == 200
    body = first.json()
    assert body["refresh_token"] != ann.refresh_token
    assert body["session_id"] == ann.session_id
    me = await client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert (await _refresh(client, body["refresh_token"])).status_code == 200


async def test_reusing_a_refresh_token_ends_the_session_and_is_audited(client, factory, state):
    ann = await factory.user(await factory.tenant())
    rotated = (await _refresh(client, ann.refresh_token)).json()
    reuse = await _refresh(client, ann.refresh_token)
    assert reuse.status_code == 401
    assert reuse.json()["error"]["code"] == "refresh_token_reused"
    # The whole session is gone: the newest refresh token and the access tokens too.
    assert (await _refresh(client, rotated["refresh_token"])).status_code == 401
    for token in (ann.access_token, rotated["access_token"]):
        me = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 401
    records = await _reuse_records(state)
    async with state.db.sessionmaker() as session:
        auth_session = await session.get(AuthSession, uuid.UUID(rotated["session_id"]))
    assert len(records) == 1
    assert records[0].result == "failure"
    assert auth_session is not None
    assert auth_session.revoked_reason == "refresh_token_reuse"


async def test_a_used_token_presented_after_its_session_ended_is_still_a_reuse(
    client, factory, state
):
    """What a late racer sees: the session another reuse ended is no excuse to call it otherwise."""
    ann = await factory.user(await factory.tenant())
    assert (await _refresh(client, ann.refresh_token)).status_code == 200
    for _ in range(2):
        again = await _refresh(client, ann.refresh_token)
        assert again.status_code == 401
        assert again.json()["error"]["code"] == "refresh_token_reused"
    reuses = await _reuse_records(state)
    assert len(reuses) == 2


async def test_an_unused_token_of_an_ended_session_is_refused_as_ended(client, factory):
    ann = await factory.user(await factory.tenant())
    headers = {"Authorization": f"Bearer {ann.access_token}"}
    assert (await client.post("/api/auth/logout", headers=headers)).status_code in (200, 204)
    refused = await _refresh(client, ann.refresh_token)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "session_revoked"


@pytest.mark.parametrize("requests", [3, 10])
async def test_concurrent_refreshes_with_one_token_issue_one_pair_and_end_the_session(
    client, factory, state, requests
):
    ann = await factory.user(await factory.tenant())
    responses = await asyncio.gather(
        *(_refresh(client, ann.refresh_token) for _ in range(requests))
    )
    assert sorted(r.status_code for r in responses) == [200] + [401] * (requests - 1)
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 401} == {
        "refresh_token_reused"
    }
    # As for any reuse, the session is over: the pair the winner got is refused too.
    [winner] = [r.json() for r in responses if r.status_code == 200]
    assert (await _refresh(client, winner["refresh_token"])).status_code == 401
    me = await client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {winner['access_token']}"}
    )
    assert me.status_code == 401
    reuses = await _reuse_records(state)
    assert len(reuses) == requests - 1


async def test_unknown_refresh_token_is_refused(client):
    response = await _refresh(client, "x" * 43)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_refresh_token"


async def test_sessions_lists_each_sign_in_and_marks_the_current_one(client, factory):
    ann = await factory.user(await factory.tenant())
    first_session = ann.session_id
    await factory.login(ann)
    response = await client.get("/api/auth/sessions", headers=ann.headers)
    assert response.status_code == 200
    sessions = response.json()
    assert len(sessions) == 2
    current = [s for s in sessions if s["current"]]
    assert [s["id"] for s in current] == [ann.session_id]
    assert first_session in {s["id"] for s in sessions}
    assert all(s["amr"] == ["pwd"] and s["ip"] == "203.0.113.7" for s in sessions)


async def test_terminating_a_session_invalidates_its_access_token_immediately(client, factory):
    ann = await factory.user(await factory.tenant())
    old_headers, old_session = dict(ann.headers), ann.session_id
    await factory.login(ann)
    response = await client.delete(f"/api/auth/sessions/{old_session}", headers=ann.headers)
    assert response.status_code == 204
    refused = await client.get("/api/auth/me", headers=old_headers)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "session_revoked"
    assert (await client.get("/api/auth/me", headers=ann.headers)).status_code == 200


async def test_a_session_revoked_in_the_database_is_refused_without_the_cache(
    client, factory, state
):
    ann = await factory.user(await factory.tenant())
    await client.post("/api/auth/logout", headers=ann.headers)
    await state.cache.delete(f"revoked:{ann.session_id}")  # e.g. a cache restart
    assert (await client.get("/api/auth/me", headers=ann.headers)).status_code == 401


async def test_cannot_terminate_another_users_session(client, factory):
    tenant = await factory.tenant()
    ann, bob = await factory.user(tenant), await factory.user(tenant)
    response = await client.delete(f"/api/auth/sessions/{bob.session_id}", headers=ann.headers)
    assert response.status_code == 404
    assert (await client.get("/api/auth/me", headers=bob.headers)).status_code == 200


async def test_logout_ends_the_session_and_its_refresh_token(client, factory):
    ann = await factory.user(await factory.tenant())
    assert (await client.post("/api/auth/logout", headers=ann.headers)).status_code == 204
    assert (await client.get("/api/auth/me", headers=ann.headers)).status_code == 401
    assert (await _refresh(client, ann.refresh_token)).status_code == 401


async def test_malformed_session_id_is_422(client, factory):
    ann = await factory.user(await factory.tenant())
    response = await client.delete("/api/auth/sessions/not-a-uuid", headers=ann.headers)
    assert response.status_code == 422
