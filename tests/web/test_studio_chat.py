"""The studio event page's chat panel in process, on both backends: the event's recent messages
with the moderation controls for its streamer, whose moderation through the panel's routes (the
watch page's, with the studio page's CSRF token) takes effect as through the API; the studio
page, panel included, is refused to a viewer of the tenant (403) and is not found (404) for
another tenant's streamer or admin."""

from __future__ import annotations

import re

import httpx

from bigfootlive.authz.roles import Role
from tests.fixtures.factories import Factory
from tests.web import helpers
from tests.web.test_pages import HTML, _signin

JSON = {"accept": "application/json"}


async def test_the_studio_shows_the_events_chat_with_its_moderation_controls(
    client: httpx.AsyncClient, factory: Factory, state
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Studio Q&A")
    await helpers.go_live(state, client, streamer, show)
    fan = await factory.user(tenant)
    spam = await helpers.say(client, fan, show["id"], "buy <b>followers</b>")
    await helpers.say(client, fan, show["id"], "great show")
    await _signin(client, tenant.slug, streamer.user.email)
    page = await client.get(f"/studio/events/{show['id']}", headers=HTML)
    assert page.status_code == 200
    panel = page.text[page.text.index('<section id="chat"') :]
    panel = panel[: panel.index("</section>")]
    assert f'data-event-id="{show["id"]}"' in panel
    assert 'data-moderator="true"' in panel
    assert f'data-user-id="{streamer.id}"' in panel
    assert 'id="slow-mode-form"' in panel
    assert '<label for="chat-input"' in panel
    # the count is the viewers' sockets (the host's own is not one of them: realtime.connection)
    count = panel[panel.index('id="chat-viewers"') :]
    count = count[: count.index("</p>")]
    assert "Viewers connected:" in count
    assert "you included" not in count
    # the recent messages in order, escaped, each with its author for the tools
    assert panel.index("buy &lt;b&gt;followers&lt;/b&gt;") < panel.index("great show")
    assert f'id="m-{spam}"' in panel
    assert f'data-user-id="{fan.id}"' in panel
    assert "js/chat.mjs" in page.text
    assert "js/chat_tools.mjs" in page.text
    # the panel's controls call the watch page's moderation routes with this page's token
    chat = f"/watch/{show['id']}/chat"
    headers = {**JSON, "x-csrf-token": helpers.meta_csrf_of(page)}
    deleted = await client.post(f"{chat}/{spam}/delete", headers=headers)
    assert deleted.status_code == 204, deleted.text
    history = await client.get(f"/api/events/{show['id']}/chat")
    assert [m["body"] for m in history.json()["items"]] == ["great show"]
    slow = await client.post(f"{chat}/slow-mode", json={"seconds": 10}, headers=headers)
    assert slow.status_code == 200, slow.text
    again = await client.get(f"/studio/events/{show['id']}", headers=HTML)
    assert "buy &lt;b&gt;followers" not in again.text
    assert re.search(r'<option value="10" selected>', again.text)
    assert "Slow mode: 10 s" in again.text


async def test_a_viewer_of_the_tenant_cannot_open_the_studio_page(
    client: httpx.AsyncClient, factory: Factory, state
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Members only", "tenant")
    await helpers.say(client, streamer, show["id"], "welcome, members")
    viewer = await factory.user(tenant, login=False)
    await _signin(client, tenant.slug, viewer.user.email)
    refused = await client.get(f"/studio/events/{show['id']}", headers=HTML)
    assert refused.status_code == 403
    assert "insufficient_role" in refused.text
    assert "welcome, members" not in refused.text
    assert 'id="chat"' not in refused.text
    watch = await client.get(f"/watch/{show['id']}", headers=HTML)
    assert 'data-moderator="false"' in watch.text  # the watch page, without the controls


async def test_another_tenants_event_is_not_found_in_the_studio(
    client: httpx.AsyncClient, factory: Factory, state
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Ours")
    await helpers.say(client, streamer, show["id"], "hello ours")
    other = await factory.tenant()
    for role in (Role.STREAMER, Role.ADMIN):
        outsider = await factory.user(other, role=role, login=False)
        client.cookies.clear()  # signed out: the next one signs in
        await _signin(client, other.slug, outsider.user.email)
        page = await client.get(f"/studio/events/{show['id']}", headers=HTML)
        assert page.status_code == 404, (role, page.status_code)
        assert "hello ours" not in page.text
