"""The studio's stream panels in process, on both backends: rotating the stream key asks for
the step-up the API asks for (a TOTP code here) and then gives a new key that the API agrees
with; the health panel shows the stream-health service's verdict; recordings are listed with a
player; another streamer's event is not found."""

from __future__ import annotations

import uuid

import httpx

from bigfootlive.authz.roles import Role
from bigfootlive.db import utcnow
from bigfootlive.models import Recording
from bigfootlive.web.session import SESSION_COOKIE
from tests.fixtures.factories import Factory
from tests.mfa.helpers import enrol_totp, stale_token, totp_code
from tests.web import helpers
from tests.web.test_pages import HTML, _csrf, _signin

HX = {"hx-request": "true"}


async def _key(client: httpx.AsyncClient, headers: dict[str, str], event_id: str) -> str:
    stream = await client.get(f"/api/streaming/events/{event_id}/stream", headers=headers)
    key: str = stream.json()["ingest"]["stream_key"]
    return key


async def test_rotating_the_key_asks_for_a_second_factor_first(
    client: httpx.AsyncClient, factory: Factory, state
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Night stream")
    old_key = await _key(client, streamer.headers, show["id"])
    _, secret, _ = await enrol_totp(client, streamer)
    # the browser's session: signed in with the password an hour ago, before the factor
    client.cookies.set(SESSION_COOKIE, stale_token(state, streamer, ["pwd"]))
    page = await client.get(f"/studio/events/{show['id']}", headers=HTML)
    assert page.status_code == 200
    assert "Rotate the stream key" in page.text
    token = _csrf(page)
    refused = await client.post(f"/studio/events/{show['id']}/key/rotate", headers=HX)
    assert refused.status_code == 403  # no CSRF token
    asked = await client.post(
        f"/studio/events/{show['id']}/key/rotate", headers={**HX, "x-csrf-token": token}
    )
    assert asked.status_code == 200
    assert 'id="step-up-form"' in asked.text
    assert 'value="totp"' in asked.text
    assert await _key(client, streamer.headers, show["id"]) == old_key  # nothing rotated yet
    wrong = await client.post(
        f"/studio/events/{show['id']}/key/rotate/verify",
        data={"method": "totp", "code": "000000"},
        headers={**HX, "x-csrf-token": token},
    )
    assert wrong.status_code in (400, 401)
    assert 'id="step-up-error"' in wrong.text
    assert await _key(client, streamer.headers, show["id"]) == old_key
    done = await client.post(
        f"/studio/events/{show['id']}/key/rotate/verify",
        data={"method": "totp", "code": totp_code(secret, 1)},
        headers={**HX, "x-csrf-token": token},
    )
    assert done.status_code == 200, done.text
    assert 'id="rotated"' in done.text
    new_key = await _key(client, streamer.headers, show["id"])
    assert new_key != old_key
    assert f'value="{new_key}"' in done.text
    assert old_key not in done.text
    # the session's cookie now carries the verification: the next rotation needs no code
    again = await client.post(
        f"/studio/events/{show['id']}/key/rotate", headers={**HX, "x-csrf-token": token}
    )
    assert 'id="rotated"' in again.text
    assert await _key(client, streamer.headers, show["id"]) not in (old_key, new_key)


async def test_a_fresh_password_sign_in_rotates_without_a_challenge(
    client: httpx.AsyncClient, factory: Factory
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Quick one")
    old_key = await _key(client, streamer.headers, show["id"])
    await _signin(client, tenant.slug, streamer.user.email)
    page = await client.get(f"/studio/events/{show['id']}", headers=HTML)
    done = await client.post(
        f"/studio/events/{show['id']}/key/rotate", headers={**HX, "x-csrf-token": _csrf(page)}
    )
    assert 'id="rotated"' in done.text
    assert await _key(client, streamer.headers, show["id"]) != old_key


async def test_health_and_recordings_panels(client: httpx.AsyncClient, factory: Factory, state):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Archive me", "tenant")
    await _signin(client, tenant.slug, streamer.user.email)
    health = await client.get(f"/studio/events/{show['id']}/health", headers=HX)
    assert health.status_code == 200
    api = await client.get(f"/api/streaming/events/{show['id']}/health", headers=streamer.headers)
    verdict = api.json()["verdict"]
    assert f'id="health-verdict" class="badge {verdict}">{verdict}<' in health.text
    assert "Keyframe interval" in health.text
    empty = await client.get(f"/studio/events/{show['id']}/recordings", headers=HX)
    assert 'id="no-recordings"' in empty.text
    async with state.db.transaction() as session:
        session.add(
            Recording(
                tenant_id=tenant.id, event_id=uuid.UUID(show["id"]), status="ready",
                storage="local", location="/x", playback_url="http://127.0.0.1:9/vod/a.m3u8",
                duration_seconds=125.0, renditions=[], published_at=utcnow(),
            )
        )  # fmt: skip
    listed = await client.get(f"/studio/events/{show['id']}/recordings", headers=HX)
    assert "125 s" in listed.text
    # a tenant event's recording plays with a playback token, as the API's vod_urls
    assert 'data-src="http://127.0.0.1:9/vod/a.m3u8?token=' in listed.text


async def test_another_streamers_panels_are_not_found(client: httpx.AsyncClient, factory: Factory):
    tenant = await factory.tenant()
    owner = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, owner, "Mine", "private")
    other = await factory.user(tenant, role=Role.STREAMER, login=False)
    await _signin(client, tenant.slug, other.user.email)
    page = await client.get("/studio", headers=HTML)
    token = _csrf(page)
    for method, path in (
        ("GET", "health"),
        ("GET", "recordings"),
        ("POST", "key/rotate"),
    ):
        answer = await client.request(
            method, f"/studio/events/{show['id']}/{path}", headers={**HX, "x-csrf-token": token}
        )
        assert answer.status_code == 404, (path, answer.text)


async def test_without_a_factor_the_step_up_asks_for_the_password(
    client: httpx.AsyncClient, factory: Factory, state
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Late show")
    old_key = await _key(client, streamer.headers, show["id"])
    client.cookies.set(SESSION_COOKIE, stale_token(state, streamer, ["pwd"]))  # an old sign-in
    page = await client.get(f"/studio/events/{show['id']}", headers=HTML)
    token = _csrf(page)
    asked = await client.post(
        f"/studio/events/{show['id']}/key/rotate", headers={**HX, "x-csrf-token": token}
    )
    assert 'id="step-up-password"' in asked.text
    wrong = await client.post(
        f"/studio/events/{show['id']}/key/rotate/verify",
        data={"method": "password", "password": "not-my-password-at-all"},
        headers={**HX, "x-csrf-token": token},
    )
    assert 'id="step-up-error"' in wrong.text
    assert await _key(client, streamer.headers, show["id"]) == old_key
    done = await client.post(
        f"/studio/events/{show['id']}/key/rotate/verify",
        data={"method": "password", "password": streamer.password},
        headers={**HX, "x-csrf-token": token},
    )
    assert 'id="rotated"' in done.text, done.text
    assert await _key(client, streamer.headers, show["id"]) != old_key
