"""With the transcoder on, the watch page plays its ladder (the API's `abr_master_url`), which
the quality menu lists; the encoder's own stream stays the fallback."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from bigfootlive.authz.roles import Role
from tests.fixtures.factories import Factory
from tests.web import helpers
from tests.web.test_pages import HTML, _signin


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"container_transcoder": True}


async def test_the_watch_page_offers_the_ladder(client: httpx.AsyncClient, factory: Factory):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Ladder", "tenant")
    stream = await client.get(
        f"/api/streaming/events/{show['id']}/stream", headers=streamer.headers
    )
    abr = stream.json()["abr_master_url"].split("?", 1)[0]
    await _signin(client, tenant.slug, streamer.user.email)
    page = await client.get(f"/watch/{show['id']}", headers=HTML)
    found = re.search(r'data-abr-url="([^"]*)"', page.text)
    assert found is not None
    assert found.group(1).startswith(abr + "?token=")  # a tenant event: with its playback token
    assert re.search(r'data-hls-url="[^"]+\?token=', page.text)
