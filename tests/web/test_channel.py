"""The channel and user pages in process, on both backends: what each visitor sees of a
tenant's events (the watch page's visibility rule), recordings of past events, and following a
streamer from their page (the users service of `/api/users/{id}/follow`)."""

from __future__ import annotations

import re
import uuid

import httpx

from bigfootlive.authz.roles import Role
from bigfootlive.db import utcnow
from bigfootlive.models import Recording
from tests.fixtures.factories import Factory
from tests.web import helpers
from tests.web.test_pages import HTML, _csrf, _signin


def _section(page: str, name: str) -> str:
    """The text of one section of the page (live, upcoming, past)."""
    start = page.index(f'id="{name}-title"')
    ends = [page.find(f'id="{n}-title"') for n in ("live", "upcoming", "past")]
    later = [e for e in ends if e > start]
    return page[start : min(later) if later else len(page)]


async def test_the_channel_shows_each_visitor_what_they_may_watch(
    client: httpx.AsyncClient, factory: Factory, state
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    live = await helpers.event(client, streamer, "Public live show")
    await helpers.go_live(state, client, streamer, live)
    await helpers.event(client, streamer, "Members briefing", "tenant")
    await helpers.event(client, streamer, "Private rehearsal", "private")
    past = await helpers.event(client, streamer, "Yesterday's show")
    await helpers.go_live(state, client, streamer, past)
    await helpers.end(client, streamer, past)
    async with state.db.transaction() as session:
        session.add(
            Recording(
                tenant_id=tenant.id, event_id=uuid.UUID(past["id"]), status="ready",
                storage="local", location="/x", playback_url="http://127.0.0.1/vod/x.m3u8",
                duration_seconds=61.0, renditions=[], published_at=utcnow(),
            )
        )  # fmt: skip
    anonymous = await client.get(f"/c/{tenant.slug}", headers=HTML)
    assert anonymous.status_code == 200
    assert "Public live show" in _section(anonymous.text, "live")
    assert f"/watch/{live['id']}" in anonymous.text
    assert "Yesterday&#39;s show" in _section(anonymous.text, "past")
    assert "Recording" in _section(anonymous.text, "past")
    assert "Members briefing" not in anonymous.text  # tenant-only
    assert "Private rehearsal" not in anonymous.text  # private
    # a member of another tenant sees only what the public sees
    other = await factory.tenant()
    outsider = await factory.user(other, login=False)
    await _signin(client, other.slug, outsider.user.email)
    seen = await client.get(f"/c/{tenant.slug}", headers=HTML)
    assert "Public live show" in seen.text
    assert "Members briefing" not in seen.text
    assert "Private rehearsal" not in seen.text
    # a member of the tenant also sees its tenant-only events, not another's private one
    client.cookies.clear()
    member = await factory.user(tenant, login=False)
    await _signin(client, tenant.slug, member.user.email)
    home = await client.get("/", headers=HTML)
    assert f'href="/c/{tenant.slug}"' in home.text  # the nav links a member to their channel
    seen = await client.get(f"/c/{tenant.slug}", headers=HTML)
    assert "Members briefing" in _section(seen.text, "upcoming")
    assert "Private rehearsal" not in seen.text
    # its moderators see everything
    client.cookies.clear()
    moderator = await factory.user(tenant, role=Role.MODERATOR, login=False)
    await _signin(client, tenant.slug, moderator.user.email)
    seen = await client.get(f"/c/{tenant.slug}", headers=HTML)
    assert "Private rehearsal" in seen.text


async def test_an_unknown_channel_is_not_found(client: httpx.AsyncClient):
    missing = await client.get("/c/no-such-tenant", headers=HTML)
    assert missing.status_code == 404
    assert "Page not found" in missing.text


async def test_follow_and_unfollow_from_a_users_page(
    client: httpx.AsyncClient, factory: Factory, state
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Cooking live")
    anonymous = await client.get(f"/u/{streamer.id}", headers=HTML)
    assert anonymous.status_code == 303  # profiles are for signed-in members, as in the API
    viewer = await factory.user(tenant)
    await _signin(client, tenant.slug, viewer.user.email)
    page = await client.get(f"/u/{streamer.id}", headers=HTML)
    assert page.status_code == 200
    assert "Cooking live" in _section(page.text, "upcoming")
    assert f"/watch/{show['id']}" in page.text
    assert re.search(r'id="follower-count">0<', page.text)
    token = _csrf(page)
    refused = await client.post(f"/u/{streamer.id}/follow", headers=HTML)
    assert refused.status_code == 403  # no CSRF token
    followed = await client.post(
        f"/u/{streamer.id}/follow", data={"csrf_token": token}, headers=HTML
    )
    assert followed.status_code == 303
    profile = await client.get(f"/api/users/{streamer.id}", headers=viewer.headers)
    assert profile.json()["is_following"] is True
    assert profile.json()["followers"] == 1
    page = await client.get(f"/u/{streamer.id}", headers=HTML)
    assert ">Unfollow<" in page.text
    unfollowed = await client.post(
        f"/u/{streamer.id}/unfollow", headers={"hx-request": "true", "x-csrf-token": token}
    )
    assert unfollowed.status_code == 200
    assert "<html" not in unfollowed.text  # the follow box alone, for htmx
    assert ">Follow<" in unfollowed.text
    profile = await client.get(f"/api/users/{streamer.id}", headers=viewer.headers)
    assert profile.json()["is_following"] is False
    # one's own page has no follow button; following oneself is refused as in the API
    own = await client.get(f"/u/{viewer.id}", headers=HTML)
    assert ">Follow<" not in own.text
    self_follow = await client.post(
        f"/u/{viewer.id}/follow", headers={"hx-request": "true", "x-csrf-token": token}
    )
    assert self_follow.status_code == 400
    assert "cannot follow yourself" in self_follow.text


async def test_another_tenants_user_page_is_not_found(client: httpx.AsyncClient, factory: Factory):
    tenant = await factory.tenant()
    stranger = await factory.user(await factory.tenant(), login=False)
    viewer = await factory.user(tenant, login=False)
    await _signin(client, tenant.slug, viewer.user.email)
    page = await client.get(f"/u/{stranger.id}", headers=HTML)
    assert page.status_code == 404
    follow = await client.get("/", headers=HTML)
    refused = await client.post(
        f"/u/{stranger.id}/follow", data={"csrf_token": _csrf(follow)}, headers=HTML
    )
    assert refused.status_code == 404
