"""The watch page's moderation in process, on both backends: the controls are rendered for the
event's moderators only, and the page's moderation routes are the chat moderation service's
rules — a viewer who is not a moderator is refused (403), the anonymous 401, a missing CSRF
token 403, a visitor who may not see the event 404; a moderator's delete, timeout, ban and slow
mode take effect as through the API."""

from __future__ import annotations

import httpx

from bigfootlive.authz.roles import Role
from tests.fixtures.factories import Factory
from tests.web import helpers
from tests.web.test_pages import HTML, _csrf, _signin

JSON = {"accept": "application/json"}


async def _history(client: httpx.AsyncClient, event_id: str) -> list[str]:
    got = await client.get(f"/api/events/{event_id}/chat")
    return [m["body"] for m in got.json()["items"]]


async def test_a_viewer_who_is_not_a_moderator_cannot_moderate(
    client: httpx.AsyncClient, factory: Factory, state
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Q&A")
    await helpers.go_live(state, client, streamer, show)
    author = await factory.user(tenant)
    message = await helpers.say(client, author, show["id"], "first!")
    chat = f"/watch/{show['id']}/chat"
    # anonymous: the page has no controls, the routes want a signed-in moderator
    page = await client.get(f"/watch/{show['id']}", headers=HTML)
    assert 'data-moderator="false"' in page.text
    assert 'id="slow-mode-form"' not in page.text
    anonymous = await client.post(
        f"{chat}/{message}/delete", headers={**JSON, "x-csrf-token": helpers.meta_csrf_of(page)}
    )
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"
    # a signed-in viewer of the tenant, not a moderator
    viewer = await factory.user(tenant, login=False)
    await _signin(client, tenant.slug, viewer.user.email)
    page = await client.get(f"/watch/{show['id']}", headers=HTML)
    assert 'data-moderator="false"' in page.text
    assert 'id="slow-mode-form"' not in page.text
    headers = {**JSON, "x-csrf-token": _csrf(page)}
    for path, body in (
        (f"{chat}/{message}/delete", None),
        (f"{chat}/timeouts/{author.id}", {"seconds": 60}),
        (f"{chat}/bans/{author.id}", {}),
        (f"{chat}/slow-mode", {"seconds": 30}),
    ):
        refused = await client.post(path, json=body, headers=headers)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["error"]["code"] == "not_moderator"
    assert "first!" in await _history(client, show["id"])
    room = await client.get(f"/api/events/{show['id']}/chat/room")
    assert room.json()["slow_mode_seconds"] == 0
    bans = await client.get(f"/api/events/{show['id']}/chat/bans", headers=streamer.headers)
    assert bans.json() == []


async def test_a_moderator_deletes_times_out_bans_and_sets_slow_mode(
    client: httpx.AsyncClient, factory: Factory, state
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Town hall")
    await helpers.go_live(state, client, streamer, show)
    author = await factory.user(tenant)
    spam = await helpers.say(client, author, show["id"], "buy my stuff")
    await helpers.say(client, author, show["id"], "hello all")
    moderator = await factory.user(tenant, role=Role.MODERATOR, login=False)
    await _signin(client, tenant.slug, moderator.user.email)
    page = await client.get(f"/watch/{show['id']}", headers=HTML)
    assert 'data-moderator="true"' in page.text
    assert 'id="slow-mode-form"' in page.text
    token = _csrf(page)
    chat = f"/watch/{show['id']}/chat"
    no_csrf = await client.post(f"{chat}/{spam}/delete", headers=JSON)
    assert no_csrf.status_code == 403
    assert no_csrf.json()["error"]["code"] == "csrf_failed"
    headers = {**JSON, "x-csrf-token": token}
    deleted = await client.post(f"{chat}/{spam}/delete", headers=headers)
    assert deleted.status_code == 204, deleted.text
    assert await _history(client, show["id"]) == ["hello all"]
    again = await client.post(f"{chat}/{spam}/delete", headers=headers)
    assert again.status_code == 404
    slow = await client.post(f"{chat}/slow-mode", json={"seconds": 30}, headers=headers)
    assert slow.status_code == 200
    assert slow.json()["slow_mode_seconds"] == 30
    room = await client.get(f"/api/events/{show['id']}/chat/room")
    assert room.json()["slow_mode_seconds"] == 30
    bad = await client.post(f"{chat}/slow-mode", json={"seconds": -1}, headers=headers)
    assert bad.status_code == 422
    assert "error" in bad.json()
    timed = await client.post(f"{chat}/timeouts/{author.id}", json={"seconds": 60}, headers=headers)
    assert timed.status_code == 204
    muted = await client.post(
        f"/api/events/{show['id']}/chat", json={"body": "hey"}, headers=author.headers
    )
    assert muted.status_code == 403, muted.text
    assert muted.json()["error"]["code"] == "timed_out"
    own = await client.post(f"{chat}/bans/{moderator.id}", json={}, headers=headers)
    assert own.status_code == 403
    assert own.json()["error"]["code"] == "target_is_moderator"
    banned = await client.post(f"{chat}/bans/{author.id}", json={}, headers=headers)
    assert banned.status_code == 204
    bans = await client.get(f"/api/events/{show['id']}/chat/bans", headers=streamer.headers)
    assert [b["user_id"] for b in bans.json()] == [author.id]


async def test_a_private_events_moderation_is_not_found_to_outsiders(
    client: httpx.AsyncClient, factory: Factory, state
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    secret = await helpers.event(client, streamer, "Board", "private")
    await helpers.go_live(state, client, streamer, secret)
    message = await helpers.say(client, streamer, secret["id"], "agenda")
    outsider = await factory.user(await factory.tenant(), role=Role.ADMIN, login=False)
    await _signin(client, outsider.tenant.slug, outsider.user.email)
    home = await client.get("/", headers=HTML)
    refused = await client.post(
        f"/watch/{secret['id']}/chat/{message}/delete",
        headers={**JSON, "x-csrf-token": _csrf(home)},
    )
    assert refused.status_code == 404
    poster = await client.get(f"/watch/{secret['id']}/poster.svg")
    assert poster.status_code == 404


async def test_the_poster_draws_the_title_escaped(
    client: httpx.AsyncClient, factory: Factory, state
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "<script>x</script> & friends")
    page = await client.get(f"/watch/{show['id']}", headers=HTML)
    assert f'poster="/watch/{show["id"]}/poster.svg"' in page.text
    assert f'href="/c/{tenant.slug}"' in page.text  # the channel
    assert f'href="/u/{streamer.id}"' in page.text  # the streamer's page
    poster = await client.get(f"/watch/{show['id']}/poster.svg")
    assert poster.status_code == 200
    assert poster.headers["content-type"].startswith("image/svg+xml")
    assert "<script>" not in poster.text
    assert "&lt;script&gt;" in poster.text
    assert "Not started yet" in poster.text
