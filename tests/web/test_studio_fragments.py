"""The studio's panels (htmx fragments of the event's page) opened directly, in process on both
backends: without `HX-Request` each is a page of its own (studio/part.html) with its title, a
heading and the link back to the event; with it, the fragment alone, as the event page swaps in.
Every fragment route the event page loads or posts to is here."""

from __future__ import annotations

import re

import httpx
import pytest

from bigfootlive.authz.roles import Role
from tests.fixtures.factories import Factory
from tests.web import helpers
from tests.web.test_pages import HTML, _signin

HX = {**HTML, "hx-request": "true"}
# (method, path under the event, the panel's title)
PANELS = [
    ("get", "panel", "Go live"),
    ("get", "health", "Stream health"),
    ("get", "simulcast", "Simulcast"),
    ("get", "analytics", "Analytics"),
    ("get", "recordings", "Recordings"),
    ("post", "key", "Stream key"),
    ("post", "key/rotate", "Rotate the stream key"),  # the step-up it asks for first
]


async def test_the_event_page_loads_no_other_fragment(client: httpx.AsyncClient, factory: Factory):
    """Each `hx-get`/`hx-post` of the event page is one of PANELS (a new one must be added)."""
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Panels")
    await _signin(client, tenant.slug, streamer.user.email)
    page = await client.get(f"/studio/events/{show['id']}", headers=HTML)
    loaded = set(re.findall(rf'hx-(get|post)="/studio/events/{show["id"]}/([^"]+)"', page.text))
    assert loaded == {(method, path) for method, path, _ in PANELS}


@pytest.mark.parametrize(("method", "path", "title"), PANELS)
async def test_a_panel_opened_directly_is_a_page_with_its_title_and_the_way_back(
    client: httpx.AsyncClient, factory: Factory, method: str, path: str, title: str
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Night <show>")
    await _signin(client, tenant.slug, streamer.user.email)
    token = helpers.csrf_of(await client.get(f"/studio/events/{show['id']}", headers=HTML))
    url = f"/studio/events/{show['id']}/{path}"
    sent = {"data": {"csrf_token": token}} if method == "post" else {}
    alone = await client.request(method.upper(), url, headers=HTML, **sent)
    assert alone.status_code == 200, alone.text
    assert f"<title>{title} · Night &lt;show&gt; · Studio · BigfootLive</title>" in alone.text
    assert f"<h1>{title}</h1>" in alone.text
    back = f'id="back-to-event" href="/studio/events/{show["id"]}">← Back to Night &lt;show&gt;<'
    assert back in alone.text
    assert 'href="/account"' in alone.text  # the site's navigation
    swapped = await client.request(method.upper(), url, headers={**HX, "x-csrf-token": token})
    assert swapped.status_code == 200, swapped.text
    assert "<html" not in swapped.text
    assert "back-to-event" not in swapped.text
    assert "<h1>" not in swapped.text
