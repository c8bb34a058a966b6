"""nginx-rtmp notifications (recorded form bodies): relay by 302, deny by 403, kick on update."""

from __future__ import annotations

from tests.fixtures.recorded import payload

HOOK = "/api/streaming/hooks/nginx-rtmp"
FORM = {"content-type": "application/x-www-form-urlencoded"}


async def _call(studio, name, *, api_key_in_query=False, **values):
    params = {"api_key": studio.api_key} if api_key_in_query else None
    headers = FORM if api_key_in_query else {**studio.hook_headers, **FORM}
    return await studio.client.post(
        HOOK, content=payload("nginx_rtmp", name, **values), headers=headers, params=params
    )


async def test_publish_is_relayed_to_the_playback_id(studio):
    event = await studio.event()
    key = event["ingest"]["stream_key"]
    response = await _call(studio, "publish.form", client_id="3", stream_key=key)
    assert response.status_code == 302
    assert response.headers["location"] == f"rtmp://127.0.0.1:19999/live/{event['playback_id']}"
    assert key not in response.headers["location"]
    assert await studio.status(event) == "live"


async def test_api_key_may_come_as_a_query_parameter(studio):
    event = await studio.event()
    response = await _call(
        studio,
        "publish.form",
        api_key_in_query=True,
        client_id="3",
        stream_key=event["ingest"]["stream_key"],
    )
    assert response.status_code == 302


async def test_unknown_key_is_refused_with_403(studio):
    response = await _call(studio, "publish.form", client_id="3", stream_key="sk_nope")
    assert response.status_code == 403


async def test_update_publish_drops_the_publisher_once_the_event_is_stopped(studio):
    event = await studio.event()
    key = event["ingest"]["stream_key"]
    await _call(studio, "publish.form", client_id="3", stream_key=key)
    alive = await _call(studio, "update_publish.form", client_id="3", stream_key=key)
    assert alive.status_code == 200
    await studio.client.post(f"/api/events/{event['id']}/stop", headers=studio.streamer.headers)
    dropped = await _call(studio, "update_publish.form", client_id="3", stream_key=key)
    assert dropped.status_code == 403


async def test_publish_done_moves_the_event_to_reconnecting(studio):
    event = await studio.event()
    key = event["ingest"]["stream_key"]
    await _call(studio, "publish.form", client_id="3", stream_key=key)
    done = await _call(studio, "publish_done.form", client_id="3", stream_key=key)
    assert done.status_code == 200
    assert await studio.status(event) == "reconnecting"
    back = await _call(studio, "publish.form", client_id="4", stream_key=key)
    assert back.status_code == 302
    assert await studio.status(event) == "live"


async def test_play_of_a_private_event_without_token_is_refused(studio):
    event = await studio.event(visibility="private")
    await _call(studio, "publish.form", client_id="3", stream_key=event["ingest"]["stream_key"])
    response = await _call(
        studio, "play.form", client_id="8", playback_id=event["playback_id"], token=""
    )
    assert response.status_code == 403


async def test_rotated_key_is_refused_at_once(studio):
    event = await studio.event()
    old = event["ingest"]["stream_key"]
    # warm the cache with the old key, then rotate
    await _call(studio, "update_publish.form", client_id="1", stream_key=old)
    rotated = await studio.client.post(
        f"/api/events/{event['id']}/stream-key", headers=studio.streamer.headers
    )
    new = rotated.json()["stream_key"]
    assert (await _call(studio, "publish.form", client_id="3", stream_key=old)).status_code == 403
    assert (await _call(studio, "publish.form", client_id="3", stream_key=new)).status_code == 302


async def test_callbacks_without_a_valid_api_key_are_401(studio):
    body = payload("nginx_rtmp", "publish.form", client_id="3", stream_key="sk_x")
    missing = await studio.client.post(HOOK, content=body, headers=FORM)
    assert missing.status_code == 401
    wrong = await studio.client.post(
        HOOK, content=body, headers={**FORM, "X-API-Key": "bfk_not-a-key"}
    )
    assert wrong.status_code == 401


async def test_revoked_api_key_stops_working_at_once(studio):
    event = await studio.event()
    keys = (await studio.client.get("/api/api-keys", headers=studio.admin.headers)).json()
    await _call(studio, "update_publish.form", client_id="1", stream_key="sk_warm_cache")
    revoked = await studio.client.delete(
        f"/api/api-keys/{keys[0]['id']}", headers=studio.admin.headers
    )
    assert revoked.status_code == 200
    response = await _call(
        studio, "publish.form", client_id="3", stream_key=event["ingest"]["stream_key"]
    )
    assert response.status_code == 401


async def test_api_key_of_another_tenant_cannot_authorize_a_publish(studio, factory, client):
    event = await studio.event()
    other = await factory.tenant()
    other_admin = await factory.user(other, role=__import__("bigfootlive").authz.roles.Role.ADMIN)
    created = await client.post(
        "/api/api-keys", json={"name": "theirs"}, headers=other_admin.headers
    )
    response = await client.post(
        HOOK,
        content=payload(
            "nginx_rtmp", "publish.form", client_id="3", stream_key=event["ingest"]["stream_key"]
        ),
        headers={**FORM, "X-API-Key": created.json()["key"]},
    )
    assert response.status_code == 403
    assert await studio.status(event) == "ready"


async def test_unknown_call_is_400(studio):
    response = await studio.client.post(
        HOOK, content=b"call=teleport&clientid=1&name=x", headers={**studio.hook_headers, **FORM}
    )
    assert response.status_code == 400
