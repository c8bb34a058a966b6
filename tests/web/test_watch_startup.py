"""The watch page starts its video first: the playlist the player starts with is fetched with
the page (a preload carrying the same playback token the player uses), the player's module runs
as soon as it arrives, and neither htmx nor the chat's modules load before it (watch.mjs starts
the chat after the first frame). The page keeps its strict CSP: no inline script or style.

In the first seconds on air the page names only the files that are there (`data-ready`, the
preload, the live thumbnail as the poster), and `/watch/{id}/playable` says what is there now
(containers/live_files.py): a browser asks the origin for nothing that would be a 404."""

from __future__ import annotations

import asyncio
import html
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy

from bigfootlive.authz.roles import Role
from bigfootlive.composition import AppState
from bigfootlive.config import Settings
from bigfootlive.containers.live_files import LiveFiles, live_files
from bigfootlive.web import watch
from bigfootlive.web.assets import static_url, vendor_file
from tests.fixtures.factories import Factory
from tests.web import helpers
from tests.web.test_pages import HTML, _signin


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, Any]:
    return {"nginx_rtmp_hls_path": str(tmp_path / "hls")}  # as the managed media server's


@pytest.fixture(autouse=True)
def fresh_playable(monkeypatch: pytest.MonkeyPatch) -> None:
    """/playable's answer as of each request (its snapshot's own test sets the moment back)."""
    monkeypatch.setattr(watch, "PLAYABLE_SECONDS", 0.0)


def _live_dir(state: AppState, show: dict[str, Any]) -> Path:
    return Path(state.settings.recordings_dir) / "live" / show["playback_id"]


def _write(path: Path, text: str = "#EXTM3U\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _there(state: AppState, show: dict[str, Any], *names: str) -> None:
    """The files the media server and the event's container write in its first seconds."""
    live = _live_dir(state, show)
    paths = {
        "hls": Path(state.settings.nginx_rtmp_hls_path or "") / f"{show['playback_id']}.m3u8",
        "dvr": live / "dvr" / "index.m3u8",
        "thumbnail": live / "thumbnail.jpg",
    }
    for name in names:
        _write(paths[name])


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
    _there(state, show, "hls", "dvr", "thumbnail")
    answer = await client.get(f"/watch/{show['id']}", headers=HTML)
    assert answer.status_code == 200
    page = answer.text
    # the playlist watch.mjs starts with (startUrl: DVR, else the ladder, else the stream)
    starts_with = _data(page, "dvr-url") or _data(page, "abr-url") or _data(page, "hls-url")
    assert starts_with
    assert _preloads(page) == [starts_with]
    assert _data(page, "ready") == "hls dvr thumbnail"
    assert _poster(page) == _data(page, "thumbnail-url")
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
    _there(state, show, "dvr", "thumbnail")
    assert (await client.get(f"/watch/{show['id']}", headers=HTML)).status_code == 404
    playable = await client.get(f"/watch/{show['id']}/playable")
    assert playable.status_code == 404  # nothing told about an event the visitor may not see
    assert playable.json()["error"]["code"] == "event_not_found"
    await _signin(client, tenant.slug, streamer.user.email)
    page = (await client.get(f"/watch/{show['id']}", headers=HTML)).text
    [preload] = _preloads(page)
    token = re.search(r"\?token=([^&]+)", _data(page, "hls-url"))
    assert token is not None
    assert preload.endswith(f"?token={token.group(1)}")  # nginx's delivery authorization
    assert _poster(page).endswith(f"/thumbnail.jpg?token={token.group(1)}")
    playable = await client.get(f"/watch/{show['id']}/playable")
    assert playable.json() == {
        "status": "live", "hls": False, "abr": False, "dvr": True, "thumbnail": True
    }  # fmt: skip


async def test_no_playlist_is_fetched_before_the_event_is_live(
    client: httpx.AsyncClient, factory: Factory
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Later", "public")
    page = (await client.get(f"/watch/{show['id']}", headers=HTML)).text
    assert _data(page, "status") == "scheduled"
    assert _preloads(page) == []
    assert _data(page, "ready") == ""
    assert 'data-chat-modules="' in page  # the chat starts at once: no video to wait for


def _poster(page: str) -> str:
    found = re.search(r'<video [^>]*poster="([^"]*)"', page)
    assert found is not None
    return html.unescape(found.group(1))


async def test_in_its_first_seconds_on_air_the_page_names_only_what_is_there(
    client: httpx.AsyncClient, factory: Factory, state: AppState
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Just started", "public")
    playable = f"/watch/{show['id']}/playable"
    nothing = {"hls": False, "abr": False, "dvr": False, "thumbnail": False}
    assert (await client.get(playable)).json() == {"status": "scheduled", **nothing}
    _there(state, show, "hls", "dvr", "thumbnail")  # left by an earlier run: not on air now
    assert (await client.get(playable)).json() == {"status": "scheduled", **nothing}
    shutil.rmtree(state.settings.nginx_rtmp_hls_path or "")
    shutil.rmtree(_live_dir(state, show))
    await helpers.go_live(state, client, streamer, show)
    # live, nothing written yet: no playlist preloaded, the drawn poster, the URLs for later
    page = (await client.get(f"/watch/{show['id']}", headers=HTML)).text
    assert _data(page, "status") == "live"
    assert _data(page, "ready") == ""
    assert _preloads(page) == []
    assert _poster(page) == f"/watch/{show['id']}/poster.svg"
    assert _data(page, "thumbnail-url").endswith(f"/live/{show['playback_id']}/thumbnail.jpg")
    assert _data(page, "dvr-url").endswith(f"/live/{show['playback_id']}/dvr/index.m3u8")
    answer = await client.get(playable)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.json() == {"status": "live", **nothing}
    # an empty file is one being written: not there yet
    _write(_live_dir(state, show) / "dvr" / "index.m3u8", "")
    assert (await client.get(playable)).json()["dvr"] is False
    # nginx-rtmp's playlist first: named, but the DVR playlist (which the player prefers) is
    # not there, so nothing is preloaded; watch.mjs waits for it a while
    _there(state, show, "hls")
    page = (await client.get(f"/watch/{show['id']}", headers=HTML)).text
    assert _data(page, "ready") == "hls"
    assert _preloads(page) == []
    assert (await client.get(playable)).json() == {"status": "live", **nothing, "hls": True}
    _there(state, show, "dvr")
    page = (await client.get(f"/watch/{show['id']}", headers=HTML)).text
    assert _preloads(page) == [_data(page, "dvr-url")]
    assert _poster(page) == f"/watch/{show['id']}/poster.svg"
    _there(state, show, "thumbnail")
    page = (await client.get(f"/watch/{show['id']}", headers=HTML)).text
    assert _poster(page) == _data(page, "thumbnail-url")
    assert (await client.get(playable)).json() == {
        "status": "live", "hls": True, "abr": False, "dvr": True, "thumbnail": True
    }  # fmt: skip


async def test_the_apis_stream_says_which_live_urls_answer_yet(
    client: httpx.AsyncClient, factory: Factory, state: AppState
):
    """An API player gets the same answer as the watch page: which URLs would be a 404 now."""
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Own player", "public", dvr_window_seconds=60)
    stream = f"/api/streaming/events/{show['id']}/stream"
    assert (await client.get(stream)).json()["files_ready"] is None  # not on air
    await helpers.go_live(state, client, streamer, show)
    shutil.rmtree(state.settings.nginx_rtmp_hls_path or "", ignore_errors=True)
    shutil.rmtree(_live_dir(state, show), ignore_errors=True)
    answer = (await client.get(stream)).json()
    assert answer["dvr_url"]  # named from the start
    assert answer["thumbnail_url"]
    nothing = {"hls_url": False, "dvr_url": False, "thumbnail_url": False}
    assert answer["files_ready"] == nothing
    _there(state, show, "hls", "dvr")
    assert (await client.get(stream, headers=streamer.headers)).json()["files_ready"] == {
        **nothing, "hls_url": True, "dvr_url": True
    }  # fmt: skip


async def test_the_other_pages_keep_htmx(client: httpx.AsyncClient):
    page = (await client.get("/signin", headers=HTML)).text
    assert f'<script src="{static_url(vendor_file("htmx.org"))}" defer></script>' in page
    assert static_url("js/app.mjs") in page


def test_where_this_server_cannot_see_the_files_the_player_tries_them(tmp_path: Path):
    def files(**values: Any) -> dict[str, bool | None]:
        settings = Settings(_env_file=None, recordings_dir=str(tmp_path), **values)  # type: ignore[call-arg]
        return live_files(settings, uuid.uuid4(), "pbx", "normal").as_dict()

    seen = files(nginx_rtmp_hls_path=str(tmp_path / "hls"))
    assert seen == {"hls": False, "abr": False, "dvr": False, "thumbnail": False}
    unknown = {"hls": None, "abr": None, "dvr": None, "thumbnail": None}
    # no HLS path (an external nginx), another media server; an S3 bucket, Kubernetes pods
    assert files()["hls"] is None
    assert files(media_server="srs", nginx_rtmp_hls_path=str(tmp_path))["hls"] is None
    assert files(container_runtime="kubernetes") == unknown
    s3 = files(recordings_storage="s3", s3_bucket="b", nginx_rtmp_hls_path=str(tmp_path))
    assert s3 == {**unknown, "hls": False}
    assert LiveFiles(**unknown).ready() == ["hls", "abr", "dvr", "thumbnail"]
    # a low-latency event on nginx-rtmp plays its container's ladder
    low = live_files(
        Settings(_env_file=None, recordings_dir=str(tmp_path), nginx_rtmp_hls_path=str(tmp_path)),  # type: ignore[call-arg]
        uuid.uuid4(), "pby", "low",
    )  # fmt: skip
    assert low.hls is False
    _write(tmp_path / "live" / "pby" / "master.m3u8")
    assert live_files(
        Settings(_env_file=None, recordings_dir=str(tmp_path)),  # type: ignore[call-arg]
        uuid.uuid4(), "pby", "low",
    ).hls is True  # fmt: skip


async def test_players_asking_at_once_share_one_read_and_a_change_reaches_them(
    client: httpx.AsyncClient, factory: Factory, state: AppState, monkeypatch: pytest.MonkeyPatch
):
    """At go-live every waiting player asks about twice a second: within PLAYABLE_SECONDS
    they share one read of the event; a visibility change reaches /playable after it."""
    monkeypatch.setattr(watch, "PLAYABLE_SECONDS", 1.0)
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Popular", "public")
    await helpers.go_live(state, client, streamer, show)
    playable = f"/watch/{show['id']}/playable"
    statements: list[str] = []
    engine = state.db.engine.sync_engine

    def seen(conn, cursor, statement, *args) -> None:
        if "FROM events" in statement:
            statements.append(statement)

    sqlalchemy.event.listen(engine, "before_cursor_execute", seen)
    try:
        answers = await asyncio.gather(*(client.get(playable) for _ in range(20)))
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", seen)
    assert {a.json()["status"] for a in answers} == {"live"}
    assert len(statements) == 1
    changed = await client.put(
        f"/api/events/{show['id']}", json={"visibility": "private"}, headers=streamer.headers
    )
    assert changed.status_code == 200, changed.text
    deadline = asyncio.get_running_loop().time() + 5 * watch.PLAYABLE_SECONDS + 2
    while (await client.get(playable)).status_code != 404:
        assert asyncio.get_running_loop().time() < deadline, "the change never reached it"
        await asyncio.sleep(watch.PLAYABLE_SECONDS / 5)
