"""The watch page starts its video first: the playlist the player starts with is fetched with
the page (a preload carrying the same playback token the player uses), the player's module runs
as soon as it arrives, and neither htmx nor the chat's modules load before it (watch.mjs starts
the chat after the first frame). The page keeps its strict CSP: no inline script or style."""

from __future__ import annotations

import html
import re

import httpx

from bigfootlive.authz.roles import Role
from bigfootlive.composition import AppState
from bigfootlive.web.assets import static_url, vendor_file
from tests.fixtures.factories import Factory
from tests.web import helpers
from tests.web.test_pages import HTML, _signin


def _data(page: str, name: str) -> str:
    found = re.search(rf'data-{name}="([^"]*)"', page)
    assert found is not None, name
    return html.unescape(found.group(1))


def _preloads(page: str) -> list[str]:
    return [
        html.unescape(url)
        for url in re.findall(
            r'<link rel="preload" href="([^"]+)" as="fetch" crossorigin="anonymous">', page
        )
    ]


def _head(page: str) -> str:
    return page.split("</head>", 1)[0]


async def test_a_live_events_page_fetches_its_playlist_with_the_page(
    client: httpx.AsyncClient, factory: Factory, state: AppState
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Fast start", "public")
    await helpers.go_live(state, client, streamer, show)
    answer = await client.get(f"/watch/{show['id']}", headers=HTML)
    assert answer.status_code == 200
    page = answer.text
    # the playlist watch.mjs starts with (liveUrl: DVR, else the ladder, else the stream)
    starts_with = _data(page, "dvr-url") or _data(page, "abr-url") or _data(page, "hls-url")
    assert starts_with
    assert _preloads(page) == [starts_with]
    head = _head(page)
    assert f'<link rel="modulepreload" href="{static_url(vendor_file("hls.js"))}">' in head
    # the player's module right after what it touches (video, overlay, bar) and before the
    # rest of the page: it starts hls.js while the rest is parsed and laid out
    player = f'<script type="module" async src="{static_url("js/watch.mjs")}"></script>'
    assert page.count(player) == 1
    assert page.index('id="quality"') < page.index(player) < page.index('id="reactions"')
    # nothing else runs before the player: no htmx, no chat module (watch.mjs loads them)
    assert "htmx" not in page
    assert "chat.mjs" not in head
    assert "chat_tools.mjs" not in head
    assert _data(page, "chat-modules") == (
        f"{static_url('js/chat_tools.mjs')} {static_url('js/chat.mjs')}"
    )
    assert "<script>" not in page
    assert "style=" not in page
    # the controls come with the first frame (watch.mjs): none to lay out before it
    video = re.search(r"<video [^>]*>", page)
    assert video is not None
    assert "controls" not in video.group(0)
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert "unsafe-inline" not in csp


async def test_a_private_events_preload_carries_the_viewers_playback_token(
    client: httpx.AsyncClient, factory: Factory, state: AppState
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Members only", "tenant")
    await helpers.go_live(state, client, streamer, show)
    assert (await client.get(f"/watch/{show['id']}", headers=HTML)).status_code == 404
    await _signin(client, tenant.slug, streamer.user.email)
    page = (await client.get(f"/watch/{show['id']}", headers=HTML)).text
    [preload] = _preloads(page)
    token = re.search(r"\?token=([^&]+)", _data(page, "hls-url"))
    assert token is not None
    assert preload.endswith(f"?token={token.group(1)}")  # nginx's delivery authorization


async def test_no_playlist_is_fetched_before_the_event_is_live(
    client: httpx.AsyncClient, factory: Factory
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Later", "public")
    page = (await client.get(f"/watch/{show['id']}", headers=HTML)).text
    assert _data(page, "status") == "scheduled"
    assert _preloads(page) == []
    assert 'data-chat-modules="' in page  # the chat starts at once: no video to wait for


async def test_the_other_pages_keep_htmx(client: httpx.AsyncClient):
    page = (await client.get("/signin", headers=HTML)).text
    assert f'<script src="{static_url(vendor_file("htmx.org"))}" defer></script>' in page
    assert static_url("js/app.mjs") in page
