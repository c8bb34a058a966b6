"""The studio's live preview in process, on both backends: shown while the event is on air,
playing what viewers get (the event's playlist, with a playback token for a private event that
the delivery rule accepts for its owner); not shown before."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlparse

import httpx

from bigfootlive.authz.roles import Role
from tests.fixtures.factories import Factory
from tests.web import helpers
from tests.web.test_pages import HTML, _signin


async def test_the_preview_appears_on_air_with_the_owners_playback_token(
    client: httpx.AsyncClient, factory: Factory, state
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Backstage", visibility="private")
    await _signin(client, tenant.slug, streamer.user.email)
    before = await client.get(f"/studio/events/{show['id']}", headers=HTML)
    assert 'id="preview"' not in before.text
    await helpers.go_live(state, client, streamer, show)
    page = await client.get(f"/studio/events/{show['id']}", headers=HTML)
    found = re.search(r'id="preview"[^>]*data-src="([^"]+)"', page.text)
    assert found, page.text
    url = html.unescape(found.group(1))
    stream = await client.get(
        f"/api/streaming/events/{show['id']}/stream", headers=streamer.headers
    )
    assert url.split("?")[0] == stream.json()["hls_url"].split("?")[0]
    token = parse_qs(urlparse(url).query)["token"][0]
    claims = state.playback_tokens.verify(token)
    assert str(claims.event_id) == show["id"]
    assert claims.playback_id == show["playback_id"]
    assert claims.viewer_id == streamer.user.id
