"""Who sees and who manages an event; listing; playback tokens; bad input."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import pytest

from bigfootlive.authz.roles import Role


async def _create(client, account, **fields):
    response = await client.post(
        "/api/events", json={"title": "Town hall", **fields}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
async def world(factory):
    acme = await factory.tenant()
    other = await factory.tenant()
    return {
        "owner": await factory.user(acme, role=Role.STREAMER),
        "streamer": await factory.user(acme, role=Role.STREAMER),
        "viewer": await factory.user(acme, role=Role.VIEWER),
        "moderator": await factory.user(acme, role=Role.MODERATOR),
        "admin": await factory.user(acme, role=Role.ADMIN),
        "outsider": await factory.user(other, role=Role.ADMIN),
    }


@pytest.mark.parametrize(
    ("visibility", "who", "visible"),
    [
        ("public", None, True),
        ("public", "outsider", True),
        ("tenant", None, False),
        ("tenant", "outsider", False),
        ("tenant", "viewer", True),
        ("private", "viewer", False),
        ("private", "streamer", False),
        ("private", None, False),
        ("private", "outsider", False),
        ("private", "moderator", True),
        ("private", "admin", True),
        ("private", "owner", True),
    ],
)
async def test_visibility_rules(client, world, visibility, who, visible):
    event = await _create(client, world["owner"], visibility=visibility)
    headers = world[who].headers if who else {}
    response = await client.get(f"/api/events/{event['id']}", headers=headers)
    assert response.status_code == (200 if visible else 404)


async def test_playback_token_opens_a_private_event_to_anyone(client, world, state):
    event = await _create(client, world["owner"], visibility="private")
    token, _ = state.playback_tokens.issue(
        event_id=uuid.UUID(event["id"]), playback_id=event["playback_id"], viewer_id=None
    )
    response = await client.get(f"/api/events/{event['id']}", params={"token": token})
    assert response.status_code == 200


async def test_playback_token_of_another_event_is_refused(client, world, state):
    event = await _create(client, world["owner"], visibility="private")
    other = await _create(client, world["owner"], visibility="private")
    token, _ = state.playback_tokens.issue(
        event_id=uuid.UUID(other["id"]), playback_id=other["playback_id"], viewer_id=None
    )
    response = await client.get(f"/api/events/{event['id']}", params={"token": token})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_playback_token"


async def test_expired_playback_token_is_refused(client, world, state):
    event = await _create(client, world["owner"], visibility="private")
    token, _ = state.playback_tokens.issue(
        event_id=uuid.UUID(event["id"]),
        playback_id=event["playback_id"],
        viewer_id=None,
        now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2),
        ttl=60,
    )
    response = await client.get(f"/api/events/{event['id']}", params={"token": token})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "playback_token_expired"


async def test_forged_playback_token_is_refused(client, world, state):
    import jwt

    event = await _create(client, world["owner"], visibility="private")
    forged = jwt.encode(
        {
            "iss": "bigfootlive",
            "aud": "bigfootlive-playback",
            "ev": event["id"],
            "pb": event["playback_id"],
            "iat": 0,
            "exp": 4102444800,
        },
        "not-the-server-key-" + "x" * 20,
        algorithm="HS256",
    )
    response = await client.get(f"/api/events/{event['id']}", params={"token": forged})
    assert response.status_code == 403


async def test_access_token_is_not_a_playback_token(client, world):
    event = await _create(client, world["owner"], visibility="private")
    response = await client.get(
        f"/api/events/{event['id']}", params={"token": world["viewer"].access_token}
    )
    assert response.status_code == 403


async def test_streamer_cannot_manage_a_colleagues_event_but_admin_can(client, world):
    event = await _create(client, world["owner"])
    url = f"/api/events/{event['id']}/start"
    denied = await client.post(url, headers=world["streamer"].headers)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "not_event_manager"
    allowed = await client.post(url, headers=world["admin"].headers)
    assert allowed.status_code == 200


async def test_other_tenants_admin_gets_404_not_403(client, world):
    event = await _create(client, world["owner"])
    for method, path in [
        ("POST", "/start"),
        ("POST", "/stop"),
        ("PUT", ""),
        ("DELETE", ""),
        ("POST", "/stream-key"),
    ]:
        response = await client.request(
            method,
            f"/api/events/{event['id']}{path}",
            headers=world["outsider"].headers,
            json={"title": "mine"} if method == "PUT" else None,
        )
        assert response.status_code == 404, (method, path, response.text)


async def test_anonymous_listing_shows_public_events_only(client, world):
    public = await _create(client, world["owner"], visibility="public")
    await _create(client, world["owner"], visibility="tenant")
    await _create(client, world["owner"], visibility="private")
    response = await client.get("/api/events")
    assert response.status_code == 200
    assert [e["id"] for e in response.json()["items"]] == [public["id"]]


async def test_member_listing_hides_others_private_events(client, world):
    await _create(client, world["owner"], visibility="private")
    tenant_only = await _create(client, world["owner"], visibility="tenant")
    own_private = await _create(client, world["streamer"], visibility="private")
    ids = {
        e["id"]
        for e in (await client.get("/api/events", headers=world["streamer"].headers)).json()[
            "items"
        ]
    }
    assert ids == {tenant_only["id"], own_private["id"]}
    outsider = await client.get("/api/events", headers=world["outsider"].headers)
    assert outsider.json()["items"] == []


async def test_listing_filters_and_paginates(client, world):
    created = [await _create(client, world["owner"], title=f"e{i}") for i in range(5)]
    await _create(client, world["streamer"])
    await client.post(f"/api/events/{created[0]['id']}/start", headers=world["owner"].headers)
    headers = world["admin"].headers
    seen: list[str] = []
    cursor = None
    while True:
        params = {"owner_id": world["owner"].id, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/events", params=params, headers=headers)).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(e["id"] for e in created)
    assert len(seen) == len(set(seen))
    ready = await client.get("/api/events", params={"status": "ready"}, headers=headers)
    assert [e["id"] for e in ready.json()["items"]] == [created[0]["id"]]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/api/events", {"title": ""}, 422),
        ("POST", "/api/events", {"title": "x", "visibility": "secret"}, 422),
        ("POST", "/api/events", {"title": "x", "scheduled_start": "2030-01-01T10:00:00"}, 422),
        ("POST", "/api/events", {"title": "x", "stream_key": "mine"}, 422),
        ("GET", "/api/events/not-a-uuid", None, 422),
        ("GET", f"/api/events/{uuid.UUID(int=1)}", None, 404),
        ("POST", f"/api/events/{uuid.UUID(int=1)}/start", None, 404),
        ("GET", "/api/events?cursor=%%%", None, 400),
        ("GET", "/api/events?status=bogus", None, 422),
        ("GET", "/api/events?limit=0", None, 422),
    ],
)
async def test_bad_input_is_a_4xx_never_500(client, world, method, path, body, status):
    response = await client.request(method, path, json=body, headers=world["owner"].headers)
    assert response.status_code == status, response.text
    assert "error" in response.json()


async def test_malformed_json_is_400(client, world):
    response = await client.post(
        "/api/events",
        content=b"{not json",
        headers={**world["owner"].headers, "content-type": "application/json"},
    )
    assert response.status_code == 400


@pytest.fixture
def settings_overrides():
    # Six accounts per test: cheap password hashing keeps the module fast.
    return {"argon2_time_cost": 1, "argon2_memory_kib": 1024}


async def test_a_public_events_views_are_counted_not_logged_as_platform_scopes(
    client, world, caplog
):
    """Finding an event's tenant from its id is a platform-wide read on every anonymous view:
    counted (bigfootlive_platform_scopes_total) and logged at DEBUG only, while a platform
    sweep's scope is still logged at INFO."""
    from bigfootlive.authz.scoping import platform_scope
    from bigfootlive.observability.metrics import PLATFORM_SCOPES

    public = await _create(client, world["owner"], visibility="public")
    views = PLATFORM_SCOPES.labels(reason="event visibility check")
    before = views._value.get()
    caplog.set_level(logging.INFO, logger="bigfootlive")
    for _ in range(3):
        assert (await client.get(f"/api/events/{public['id']}")).status_code == 200
    assert views._value.get() >= before + 3
    scopes = [r for r in caplog.records if "platform_scope" in str(r.msg)]
    assert scopes == []
    with platform_scope("test sweep"):
        pass
    assert [r.levelno for r in caplog.records if "platform_scope" in str(r.msg)] == [logging.INFO]
