"""The web app in headless Chromium against a real server, nginx-rtmp and ffmpeg.

The package's one `bigfootlive serve` (with its managed nginx-rtmp) and browser (conftest.py);
the module's tenant `acme`; each test opens its own browser contexts (separate cookie jars).
Waits are on conditions in the page.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures import browser as b

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def site(server: b.Server) -> Iterator[b.Site]:
    with server.site("acme", b.PEOPLE) as acme:
        yield acme


@pytest.fixture(scope="module")
def live_event(site: b.Site) -> dict[str, Any]:
    return site.event("sam", "Morning show", "public", live=True)


def test_sign_in_through_the_page_and_pages_pass_axe(tabs: Any, site: b.Site) -> None:
    tab = tabs()
    page = tab.page
    page.goto("/signin")
    assert b.axe_violations(page) == []
    page.get_by_label("Email", exact=True).fill("vera@acme.com")
    page.get_by_label("Password", exact=True).fill("not-the-password-123")
    page.get_by_label("Organisation").fill("acme")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "The email or password is incorrect"
    assert b.axe_violations(page) == []  # the form with its error
    tab.sign_in("vera")
    assert b.axe_violations(page) == []  # the home page, signed in
    cookies = {c["name"]: c for c in tab.context.cookies()}
    assert cookies["bfl_session"]["httpOnly"]
    assert cookies["bfl_session"]["sameSite"] == "Lax"
    assert page.evaluate("document.cookie") == ""  # nothing of the session is readable
    page.goto("/register")
    assert b.axe_violations(page) == []
    page.goto("/no-such-page")
    assert "Page not found" in page.content()
    assert b.axe_violations(page) == []
    page.goto("/")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{site.base}/")
    assert "Signed in as" not in page.content()
    assert tab.csp_violations() == []


def test_csrf_is_refused_without_the_token(tabs: Any) -> None:
    tab = tabs()
    tab.sign_in("vera")
    page = tab.page
    # a script of the page posting without the token (the cookies go along, SameSite allows it)
    status = page.evaluate("async () => (await fetch('/signout', {method: 'POST'})).status")
    assert status == 403
    # the form with its token removed
    page.goto("/")
    page.evaluate(
        "document.querySelector('form[action=\"/signout\"] input[name=csrf_token]').remove()"
    )
    page.get_by_role("button", name="Sign out").click()
    assert "csrf_failed" in page.content()
    page.goto("/")
    assert "Signed in as" in page.content()  # still signed in: nothing happened


def test_a_viewer_watches_a_live_event_and_chats(
    tabs: Any, site: b.Site, live_event: dict[str, Any]
) -> None:
    viewer = tabs()
    viewer.sign_in("vera")
    page = viewer.page
    # the event's container has started its DVR copy (the page then plays the DVR playlist)
    # and made the live thumbnail (the video's poster until the first frame)
    dvr = site.tmp / "media" / "live" / live_event["playback_id"] / "dvr" / "index.m3u8"
    b.wait_for(lambda: dvr.is_file() and "#EXTINF" in dvr.read_text(), 60, lambda: "no DVR")
    thumbnail = dvr.parent.parent / "thumbnail.jpg"
    b.wait_for(thumbnail.is_file, 60, lambda: "no thumbnail")
    with page.expect_response(lambda r: r.url.endswith("/beacons"), timeout=90_000) as beacon:
        page.goto(f"/watch/{live_event['id']}")
        try:
            page.wait_for_function(
                "() => document.querySelector('video').currentTime > 1", timeout=60_000
            )
        except Exception as exc:
            raise AssertionError("\n".join(viewer.console[-40:])) from exc
    assert beacon.value.status == 202  # the start beacon, with its startup time
    start = page.evaluate("document.querySelector('video').currentTime")
    page.wait_for_function(
        f"() => document.querySelector('video').currentTime > {start + 1}", timeout=30_000
    )
    assert page.locator("#state-badge").inner_text() == "Live"
    assert "0 kb/s" not in page.locator("#quality").inner_text()  # a level with no figures
    # the live thumbnail is the video's poster; with a DVR window the player may rewind
    assert "/thumbnail.jpg" in (page.locator("#video").get_attribute("poster") or "")
    assert "/dvr/index.m3u8" in (page.locator("#watch").get_attribute("data-dvr-url") or "")
    # chat from a second browser context (the streamer) appears for the viewer
    streamer = tabs()
    streamer.sign_in("sam")
    streamer.page.goto(f"/watch/{live_event['id']}")
    streamer.page.wait_for_selector("#chat-form:not([hidden])")
    page.wait_for_selector("#chat-form:not([hidden])")
    streamer.page.get_by_label("Message").fill("Hello from the studio")
    streamer.page.get_by_role("button", name="Send").click()
    page.wait_for_selector("#chat-messages li:has-text('Hello from the studio')", timeout=15_000)
    assert "Sam Streamer" in page.locator("#chat-messages li").last.inner_text()
    # the viewer counts; the streamer, on their own event's page, is not one of its viewers
    page.wait_for_function(
        "() => Number(document.getElementById('viewer-count').textContent) === 1", timeout=20_000
    )
    assert b.axe_violations(page) == []
    page.screenshot(path=str(b.docs_dir() / "watch-page.png"))
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.screenshot(path=str(b.docs_dir() / "watch-page-phone.png"), full_page=True)
    assert viewer.csp_violations() == []
    assert streamer.csp_violations() == []


# Recorded from the page's first moment: the first frame (and whether the controls were there
# yet), the chat's socket.
STARTUP = """
window.__firstFrame = null;
document.addEventListener('playing', (e) => {
  if (window.__firstFrame !== null) return;
  window.__firstFrame = performance.now();
  window.__controlsAtFirstFrame = e.target.controls;
}, true);
window.__socketAt = null;
window.WebSocket = class extends window.WebSocket {
  constructor(...args) { super(...args); window.__socketAt ??= performance.now(); }
};
"""


def test_the_video_starts_before_the_chat_and_its_playlist_comes_with_the_page(
    tabs: Any, site: b.Site, live_event: dict[str, Any]
) -> None:
    dvr = site.tmp / "media" / "live" / live_event["playback_id"] / "dvr" / "index.m3u8"
    b.wait_for(lambda: dvr.is_file() and "#EXTINF" in dvr.read_text(), 60, lambda: "no DVR")
    anonymous = tabs()
    page = anonymous.page
    page.add_init_script(STARTUP)
    page.goto(f"/watch/{live_event['id']}")
    page.wait_for_function("() => window.__firstFrame !== null", timeout=60_000)
    page.wait_for_selector("#chat-status:has-text('read-only')")  # the chat, started after
    first_frame = page.evaluate("window.__firstFrame")
    assert page.evaluate("window.__controlsAtFirstFrame") is False
    assert page.evaluate("document.getElementById('video').controls") is True
    assert page.evaluate("window.__socketAt") > first_frame
    loads = page.evaluate(
        "performance.getEntriesByType('resource').map(e => [e.name, e.startTime, e.initiatorType])"
    )
    chat = [start for name, start, _ in loads if "/static/js/chat.mjs" in name]
    assert chat
    assert chat[0] > first_frame
    assert not [name for name, _, _ in loads if "htmx" in name]
    # the playlist was fetched once before the first fragment: by the page's preload, which
    # hls.js then used (with the same URL, so under the same delivery authorization)
    first_fragment = min(start for name, start, _ in loads if name.split("?")[0].endswith(".ts"))
    playlists = [
        (name, kind)
        for name, start, kind in loads
        if "/dvr/index.m3u8" in name and start < first_fragment
    ]
    assert [kind for _, kind in playlists] == ["link"]
    assert playlists[0][0] == page.locator("#watch").get_attribute("data-dvr-url")
    assert anonymous.csp_violations() == []


def test_an_anonymous_visitor_is_refused_a_private_events_video(
    tabs: Any, site: b.Site, live_event: dict[str, Any]
) -> None:
    private = site.event("sam", "Board meeting", "private", live=True)
    hls = private["stream"]["hls_url"].split("?", 1)[0]
    anonymous = tabs()
    page = anonymous.page
    answer = page.goto(f"/watch/{private['id']}")
    assert answer is not None
    assert answer.status == 404
    assert private["playback_id"] not in page.content()
    page.goto(f"/watch/{live_event['id']}")  # a page of ours, to fetch from
    status = page.evaluate(f"async () => (await fetch('{hls}')).status")
    assert status == 401
    # the owner, signed in, plays it through the same delivery authorization
    owner = tabs()
    owner.sign_in("sam")
    owner.page.goto(f"/watch/{private['id']}")
    owner.page.wait_for_function(
        "() => document.querySelector('video').currentTime > 1", timeout=60_000
    )
    assert "?token=" in owner.page.locator("#watch").get_attribute("data-hls-url")


def test_not_started_state(tabs: Any, site: b.Site) -> None:
    event = site.event("sam", "Later today", "public", live=False)
    page = tabs().page
    page.goto(f"/watch/{event['id']}")
    assert page.locator("#state-badge").inner_text() == "Not started yet"
    assert "Not started yet" in page.locator("#overlay").inner_text()
    page.wait_for_selector("#chat-status:has-text('read-only')")
    assert page.locator("#chat").inner_text().lower().count("sign in") == 1  # said once
    assert b.axe_violations(page) == []


def test_a_streamer_creates_an_event_in_the_studio_and_goes_live(tabs: Any, site: b.Site) -> None:
    tab = tabs()
    tab.sign_in("sam")
    page = tab.page
    page.get_by_role("link", name="Studio").click()
    page.wait_for_url(f"{site.base}/studio")
    assert b.axe_violations(page) == []
    page.get_by_label("Title").fill("Studio launch")
    page.get_by_role("button", name="Create the event").click()
    page.wait_for_url(f"{site.base}/studio/events/*")
    assert b.axe_violations(page) == []
    page.get_by_role("button", name="Reveal the stream key").click()  # htmx swaps the key in
    publish_url = page.get_by_label("Publish URL").input_value()
    assert publish_url.startswith("rtmp://127.0.0.1:")
    # publishing before the event is started is refused, and the panel says why
    early = b.publish(publish_url, site.tmp / "ff-early.log")
    site.encoders.append(early)
    page.wait_for_selector("#last-refused:has-text('event_not_started')", timeout=30_000)
    early.wait(30)
    page.get_by_role("button", name="Start: let the encoder in").click()
    page.wait_for_selector("#event-state:has-text('ready')")
    site.encoders.append(b.publish(publish_url, site.tmp / "ff-studio.log"))
    page.wait_for_selector("#event-state:has-text('live')", timeout=30_000)
    assert b.axe_violations(page) == []
    page.screenshot(path=str(b.docs_dir() / "studio-event.png"), full_page=True)
    # the watch link plays what the encoder sends
    viewer = tabs().page
    viewer.goto(page.locator("#watch-link").get_attribute("href") or "")
    viewer.wait_for_function(
        "() => document.querySelector('video').currentTime > 1", timeout=60_000
    )
    assert viewer.locator("#viewers").is_visible()
    page.get_by_role("button", name="Stop the event").click()
    page.wait_for_selector("#event-state:has-text('ended')")
    viewer.wait_for_selector("#state-badge:has-text('Ended')", timeout=15_000)
    assert viewer.locator("#viewers").is_hidden()  # no "N watching" under an ended event
    viewer.reload()
    assert viewer.locator("#state-badge").inner_text() == "Ended"
    assert viewer.locator("#viewers").is_hidden()
    assert tab.csp_violations() == []


def test_the_api_reference_renders_from_our_own_files(tabs: Any, site: b.Site) -> None:
    """/docs and /api-docs (README, quick start) draw the operations with the package's pinned
    Swagger UI: nothing is fetched from another origin, so they work offline too."""
    for path in ("/docs", "/api-docs"):
        tab = tabs()
        elsewhere: list[str] = []
        tab.page.on(
            "request",
            lambda r, out=elsewhere: r.url.startswith(site.base) or out.append(r.url),
        )
        tab.page.goto(path)
        tab.page.wait_for_selector(".opblock", timeout=30_000)  # an operation, drawn
        assert tab.page.locator(".opblock").count() > 50
        assert elsewhere == [], elsewhere
        assert not [line for line in tab.console if line.startswith("error")], tab.console
