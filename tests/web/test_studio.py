"""The streamer studio in process: who may use it, creating an event through the form, the
stream key revealed only on request (the same key as the API's), start and stop."""

from __future__ import annotations

import re

import httpx

from bigfootlive.authz.roles import Role
from tests.fixtures.factories import Factory
from tests.web.test_pages import HTML, _csrf, _signin


async def test_the_studio_is_for_signed_in_streamers(client: httpx.AsyncClient, factory: Factory):
    anonymous = await client.get("/studio", headers=HTML)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/signin?next=/studio"
    tenant = await factory.tenant()
    viewer = await factory.user(tenant, login=False)
    await _signin(client, tenant.slug, viewer.user.email)
    home = await client.get("/", headers=HTML)
    assert 'href="/studio"' not in home.text  # no link to what the role cannot use
    refused = await client.get("/studio", headers=HTML)
    assert refused.status_code == 403
    assert "insufficient_role" in refused.text


async def test_create_reveal_the_key_start_and_stop(client: httpx.AsyncClient, factory: Factory):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    await _signin(client, tenant.slug, streamer.user.email)
    studio = await client.get("/studio", headers=HTML)
    assert studio.status_code == 200
    assert 'href="/studio"' in studio.text
    created = await client.post(
        "/studio/events",
        data={"csrf_token": _csrf(studio), "title": "Launch", "visibility": "private"},
        headers=HTML,
    )
    assert created.status_code == 303, created.text
    event_id = created.headers["location"].rsplit("/", 1)[1]
    page = await client.get(created.headers["location"], headers=HTML)
    assert "Launch" in page.text
    assert f"/watch/{event_id}" in page.text
    api = await client.get(f"/api/streaming/events/{event_id}/stream", headers=streamer.headers)
    key = api.json()["ingest"]["stream_key"]
    assert key not in page.text  # not until asked for
    assert api.json()["ingest"]["server_url"] in page.text
    token = _csrf(page)
    no_token = await client.post(f"/studio/events/{event_id}/key", headers={"hx-request": "true"})
    assert no_token.status_code == 403
    revealed = await client.post(
        f"/studio/events/{event_id}/key", headers={"hx-request": "true", "x-csrf-token": token}
    )
    assert revealed.status_code == 200
    assert f'value="{key}"' in revealed.text
    assert "<html" not in revealed.text  # an htmx fragment
    assert revealed.headers["cache-control"] == "no-store"
    # without JavaScript the form posts itself: a page with its title and the way back
    plain = await client.post(
        f"/studio/events/{event_id}/key", data={"csrf_token": token}, headers=HTML
    )
    assert plain.status_code == 200
    assert f'value="{key}"' in plain.text
    # the site name once; the event's title (studio/part.html, as every panel opened directly)
    assert "<title>Stream key · Launch · Studio · BigfootLive</title>" in plain.text
    assert f'href="/studio/events/{event_id}">← Back to Launch</a>' in plain.text
    started = await client.post(
        f"/studio/events/{event_id}/start", data={"csrf_token": token}, headers=HTML
    )
    assert started.status_code == 303
    panel = await client.get(f"/studio/events/{event_id}/panel", headers={"hx-request": "true"})
    assert re.search(r'id="event-state"[^>]*>ready<', panel.text)
    assert "No refused publish" in panel.text
    stopped = await client.post(
        f"/studio/events/{event_id}/stop", data={"csrf_token": token}, headers=HTML
    )
    assert stopped.status_code == 303
    event = await client.get(f"/api/events/{event_id}", headers=streamer.headers)
    assert event.json()["status"] == "ended"
    mine = await client.get("/studio", headers=HTML)
    assert f"/studio/events/{event_id}" in mine.text


async def test_another_streamers_event_is_not_found(client: httpx.AsyncClient, factory: Factory):
    tenant = await factory.tenant()
    owner = await factory.user(tenant, role=Role.STREAMER)
    other = await factory.user(tenant, role=Role.STREAMER, login=False)
    created = await client.post(
        "/api/events", json={"title": "Mine", "visibility": "private"}, headers=owner.headers
    )
    await _signin(client, tenant.slug, other.user.email)
    page = await client.get(f"/studio/events/{created.json()['id']}", headers=HTML)
    assert page.status_code == 404
