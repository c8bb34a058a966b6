"""Profiles and follows: within the tenant, edits by the user or an admin."""

from __future__ import annotations

import uuid

import pytest

from bigfootlive.authz.roles import Role


@pytest.fixture
async def people(factory):
    tenant = await factory.tenant()
    return {
        "ann": await factory.user(tenant, role=Role.STREAMER),
        "bob": await factory.user(tenant),
        "admin": await factory.user(tenant, role=Role.ADMIN),
        "outsider": await factory.user(await factory.tenant()),
    }


async def test_profile_shows_counts(client, people):
    ann, bob = people["ann"], people["bob"]
    response = await client.get(f"/api/users/{ann.id}", headers=bob.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["role"] == "streamer"
    assert (body["followers"], body["following"], body["is_following"]) == (0, 0, False)
    assert "email" not in body


async def test_user_edits_own_profile(client, people):
    ann = people["ann"]
    response = await client.put(
        f"/api/users/{ann.id}",
        json={
            "display_name": "Ann L.",
            "bio": "Live every Friday",
            "avatar_url": "https://img.example/a.png",
        },
        headers=ann.headers,
    )
    assert response.status_code == 200
    assert response.json()["display_name"] == "Ann L."
    assert response.json()["avatar_url"] == "https://img.example/a.png"


async def test_user_cannot_edit_someone_elses_profile_but_an_admin_can(client, people):
    ann, bob, admin = people["ann"], people["bob"], people["admin"]
    denied = await client.put(f"/api/users/{ann.id}", json={"bio": "hacked"}, headers=bob.headers)
    assert denied.status_code == 403
    allowed = await client.put(
        f"/api/users/{ann.id}", json={"bio": "moderated"}, headers=admin.headers
    )
    assert allowed.status_code == 200
    assert allowed.json()["bio"] == "moderated"


@pytest.mark.parametrize(
    "body",
    [
        {"display_name": ""},
        {"avatar_url": "javascript:alert(1)"},
        {"role": "admin"},
        {"bio": "x" * 1001},
    ],
)
async def test_bad_profile_edits_are_422(client, people, body):
    ann = people["ann"]
    response = await client.put(f"/api/users/{ann.id}", json=body, headers=ann.headers)
    assert response.status_code == 422


async def test_follow_is_idempotent_and_unfollow_undoes_it(client, people):
    ann, bob = people["ann"], people["bob"]
    for _ in range(2):
        response = await client.post(f"/api/users/{ann.id}/follow", headers=bob.headers)
        assert response.status_code == 200
        assert response.json() == {"following": True, "followers": 1}
    profile = await client.get(f"/api/users/{ann.id}", headers=bob.headers)
    assert profile.json()["is_following"] is True
    followers = await client.get(f"/api/users/{ann.id}/followers", headers=bob.headers)
    assert [f["user_id"] for f in followers.json()["items"]] == [bob.id]
    following = await client.get(f"/api/users/{bob.id}/following", headers=bob.headers)
    assert [f["user_id"] for f in following.json()["items"]] == [ann.id]
    response = await client.delete(f"/api/users/{ann.id}/follow", headers=bob.headers)
    assert response.json() == {"following": False, "followers": 0}


async def test_follower_list_paginates(client, factory, people):
    ann = people["ann"]
    fans = [await factory.user(ann.tenant) for _ in range(3)]
    for fan in fans:
        await client.post(f"/api/users/{ann.id}/follow", headers=fan.headers)
    page1 = await client.get(f"/api/users/{ann.id}/followers?limit=2", headers=ann.headers)
    page2 = await client.get(
        f"/api/users/{ann.id}/followers?limit=2&cursor={page1.json()['next_cursor']}",
        headers=ann.headers,
    )
    seen = [f["user_id"] for f in page1.json()["items"] + page2.json()["items"]]
    assert sorted(seen) == sorted(f.id for f in fans)
    assert page2.json()["next_cursor"] is None


async def test_cannot_follow_yourself(client, people):
    ann = people["ann"]
    response = await client.post(f"/api/users/{ann.id}/follow", headers=ann.headers)
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("PUT", "", {"bio": "x"}),
        ("POST", "/follow", None),
        ("DELETE", "/follow", None),
        ("GET", "/followers", None),
        ("GET", "/following", None),
    ],
)
async def test_other_tenants_users_look_like_they_do_not_exist(
    client, people, method, suffix, body
):
    outsider, admin = people["outsider"], people["admin"]
    for target in (outsider.id, str(uuid.uuid4())):
        response = await client.request(
            method, f"/api/users/{target}{suffix}", json=body, headers=admin.headers
        )
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "user_not_found"
