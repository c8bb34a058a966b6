"""The studio's simulcast panel in process, on both backends: each destination with the state
and reason its container records, the key only masked; not found for another tenant."""

from __future__ import annotations

import uuid

import httpx

from bigfootlive.authz.roles import Role
from bigfootlive.db import utcnow
from bigfootlive.events import simulcast
from bigfootlive.events.simulcast_schemas import DestinationState
from tests.fixtures.factories import Factory
from tests.web import helpers
from tests.web.test_pages import HTML, _signin

HX = {"hx-request": "true"}
KEY = "live_9f8e7d6c5b4a-secret"


async def test_the_panel_shows_each_destinations_state_and_reason(
    client: httpx.AsyncClient, factory: Factory, state
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Everywhere")
    await _signin(client, tenant.slug, streamer.user.email)
    empty = await client.get(f"/studio/events/{show['id']}/simulcast", headers=HX)
    assert empty.status_code == 200
    assert "No simulcast destination" in empty.text
    added = await client.post(
        f"/api/events/{show['id']}/simulcast",
        json={"platform": "twitch", "name": "Twitch", "stream_key": KEY},
        headers=streamer.headers,
    )
    assert added.status_code == 201, added.text
    destination = added.json()
    async with state.db.transaction() as session:  # what the event's container records
        await simulcast.set_state(
            session, tenant.id, uuid.UUID(destination["id"]), DestinationState.FAILED,
            reason="Server error: Already publishing", attempts=3, at=utcnow(),
        )  # fmt: skip
    panel = await client.get(f"/studio/events/{show['id']}/simulcast", headers=HX)
    assert panel.status_code == 200
    row = panel.text.split(f'id="simulcast-{destination["id"]}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-state="failed"' in row
    assert "Server error: Already publishing" in row
    assert "<td>3</td>" in row
    assert destination["stream_key_hint"] in row
    assert KEY not in panel.text
    page = await client.get(f"/studio/events/{show['id']}", headers=HTML)
    assert f'hx-get="/studio/events/{show["id"]}/simulcast"' in page.text


async def test_another_tenants_streamer_gets_not_found(client: httpx.AsyncClient, factory: Factory):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Mine")
    other = await factory.tenant()
    stranger = await factory.user(other, role=Role.STREAMER)
    await _signin(client, other.slug, stranger.user.email)
    hidden = await client.get(f"/studio/events/{show['id']}/simulcast", headers=HX)
    assert hidden.status_code == 404


async def _form(client: httpx.AsyncClient, event_id: str) -> str:
    """The studio page's CSRF token; the page carries the simulcast form."""
    shown = await client.get(f"/studio/events/{event_id}", headers=HTML)
    assert 'id="simulcast-form"' in shown.text
    assert f'action="/studio/events/{event_id}/simulcast"' in shown.text
    return helpers.csrf_of(shown)


async def test_the_form_adds_and_removes_a_destination_the_key_only_masked(
    client: httpx.AsyncClient, factory: Factory
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Everywhere")
    await _signin(client, tenant.slug, streamer.user.email)
    token = await _form(client, show["id"])
    fields = {"csrf_token": token, "platform": "youtube", "name": "", "url": ""}
    added = await client.post(
        f"/studio/events/{show['id']}/simulcast",
        data={**fields, "stream_key": f"  {KEY} "},  # pasted with spaces around: trimmed
        headers=HTML,
    )
    assert added.status_code == 303, added.text
    assert added.headers["location"] == (
        f"/studio/events/{show['id']}?simulcast=added#simulcast-title"
    )
    listed = await client.get(f"/api/events/{show['id']}/simulcast", headers=streamer.headers)
    [row] = listed.json()
    assert (row["platform"], row["name"]) == ("youtube", "youtube")
    assert row["url"] == "rtmp://a.rtmp.youtube.com/live2"  # the platform's own server
    assert row["stream_key_hint"] == "…" + KEY[-4:]
    back = await client.get(added.headers["location"], headers=HTML)
    assert "Destination added" in back.text
    assert KEY not in back.text
    panel = await client.get(f"/studio/events/{show['id']}/simulcast", headers=HX)
    assert row["stream_key_hint"] in panel.text
    assert KEY not in panel.text
    action = f"/studio/events/{show['id']}/simulcast/{row['id']}/remove"
    assert f'action="{action}"' in panel.text
    no_token = await client.post(action, headers=HTML)
    assert no_token.status_code == 403
    removed = await client.post(action, data={"csrf_token": token}, headers=HTML)
    assert removed.status_code == 303
    assert removed.headers["location"].endswith("?simulcast=removed#simulcast-title")
    listed = await client.get(f"/api/events/{show['id']}/simulcast", headers=streamer.headers)
    assert listed.json() == []
    again = await client.post(action, data={"csrf_token": token}, headers=HTML)
    assert again.status_code == 404  # the API's destination_not_found


async def test_the_form_refuses_as_the_api_does_and_never_echoes_the_key(
    client: httpx.AsyncClient, factory: Factory, settings
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Everywhere")
    await _signin(client, tenant.slug, streamer.user.email)
    token = await _form(client, show["id"])
    url = f"/studio/events/{show['id']}/simulcast"
    cases = [  # (fields, status, the alert): the API's checks and messages
        ({"platform": "custom"}, 422, "A custom destination needs its rtmp:// or rtmps:// URL"),
        ({"platform": "custom", "url": "http://example.com/live"}, 422,
         "The destination URL must be rtmp:// or rtmps:// with a host"),
        ({"platform": "custom", "url": "rtmp://example.com/live?key=1"}, 422,
         "Put the stream key in the Destination stream key field, not in the URL"
         " (no user, query or fragment)"),
        ({"platform": "twitch", "stream_key": "two words"}, 422,
         "The stream key must not contain spaces or control characters"),
        ({"platform": "twitch", "stream_key": ""}, 422,
         "Enter the stream key the platform gave you."),
        ({"platform": "myspace"}, 422, "Choose a platform from the list."),
        ({"platform": "twitch", "name": "n" * 101}, 422, "The name is at most 100 characters."),
    ]  # fmt: skip
    for fields, status, said in cases:
        sent = {"csrf_token": token, "name": "Mine", "stream_key": KEY, **fields}
        refused = await client.post(url, data=sent, headers=HTML)
        assert refused.status_code == status, (fields, refused.text)
        assert helpers.alert_of(refused) == said, fields
        assert KEY not in refused.text  # the key field comes back empty
        assert 'name="stream_key" type="password"' in refused.text
        assert "<h1>Simulcast</h1>" in refused.text  # a page of its own, with the way back
        assert f'href="/studio/events/{show["id"]}"' in refused.text
        if fields.get("url"):
            assert f'value="{fields["url"]}"' in refused.text  # the rest as sent
    listed = await client.get(f"/api/events/{show['id']}/simulcast", headers=streamer.headers)
    assert listed.json() == []
    settings.simulcast_max_destinations = 1
    first = await client.post(
        url, data={"csrf_token": token, "platform": "kick", "stream_key": KEY}, headers=HTML
    )
    assert first.status_code == 303
    over = await client.post(
        url, data={"csrf_token": token, "platform": "twitch", "stream_key": KEY}, headers=HTML
    )
    assert over.status_code == 409
    assert helpers.alert_of(over) == (
        "The tenant has reached its limit of simulcast destinations (1)."
    )
    assert "kick" in over.text  # the list above the form
    cancelled = await client.post(
        f"/studio/events/{show['id']}/cancel", data={"csrf_token": token}, headers=HTML
    )
    assert cancelled.status_code == 303  # and a finished event takes no destination
    settings.simulcast_max_destinations = 10
    ended = await client.post(
        url, data={"csrf_token": token, "platform": "twitch", "stream_key": KEY}, headers=HTML
    )
    assert ended.status_code == 409
    assert helpers.alert_of(ended) == "The event has ended or was cancelled"
    over = await client.get(f"/studio/events/{show['id']}", headers=HTML)
    assert 'id="simulcast-form"' not in over.text  # the event page offers no form then
    assert "The event is over: no destination can be added." in over.text


async def test_only_the_events_managers_use_the_form(client: httpx.AsyncClient, factory: Factory):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Mine")
    added = await client.post(
        f"/api/events/{show['id']}/simulcast",
        json={"platform": "twitch", "stream_key": KEY},
        headers=streamer.headers,
    )
    remove = f"/studio/events/{show['id']}/simulcast/{added.json()['id']}/remove"
    other = await factory.user(tenant, role=Role.STREAMER)  # a streamer, not this event's
    viewer = await factory.user(tenant, role=Role.VIEWER)
    stranger = await factory.user(await factory.tenant(), role=Role.STREAMER)
    # the role cannot stream; not the event's owner (nor an admin); another tenant's event
    for who, status in [(viewer, 403), (other, 403), (stranger, 404)]:
        client.cookies.clear()
        await _signin(client, who.tenant.slug, who.user.email)
        token = helpers.csrf_of(await client.get("/", headers=HTML))
        sent = {"csrf_token": token, "platform": "youtube", "stream_key": KEY}
        tried = await client.post(f"/studio/events/{show['id']}/simulcast", data=sent, headers=HTML)
        assert tried.status_code == status, (who.user.email, tried.text)
        gone = await client.post(remove, data={"csrf_token": token}, headers=HTML)
        assert gone.status_code == status
    listed = await client.get(f"/api/events/{show['id']}/simulcast", headers=streamer.headers)
    assert len(listed.json()) == 1
    admin = await factory.user(tenant, role=Role.ADMIN)  # the tenant's admins manage any event
    client.cookies.clear()
    await _signin(client, tenant.slug, admin.user.email)
    token = helpers.csrf_of(await client.get(f"/studio/events/{show['id']}", headers=HTML))
    sent = {"csrf_token": token, "platform": "kick", "stream_key": KEY}
    added = await client.post(f"/studio/events/{show['id']}/simulcast", data=sent, headers=HTML)
    assert added.status_code == 303, added.text
    gone = await client.post(remove, data={"csrf_token": token}, headers=HTML)
    assert gone.status_code == 303
    listed = await client.get(f"/api/events/{show['id']}/simulcast", headers=streamer.headers)
    assert [d["platform"] for d in listed.json()] == ["kick"]
