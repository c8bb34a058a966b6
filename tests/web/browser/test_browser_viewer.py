"""The viewer pages and the studio's stream panels in headless Chromium against a real server,
nginx-rtmp and ffmpeg (the package's harness, conftest.py; the module's tenant `acme-watch`):
a moderator deletes a chat message and it disappears for a viewer in another browser context;
replies and reactions; the studio's chat panel shows a viewer's message live, deletes it and
times its author out from there; the "ended" state appears when the stream stops; the channel
page lists the live event; following from a user's page; the studio's health panel and key
rotation; axe-core finds no serious or critical violation on any of these pages, and the
browser reports no Content-Security-Policy violation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures import browser as b

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


TENANT = "acme-watch"


@pytest.fixture(scope="module")
def site(server: b.Server) -> Iterator[b.Site]:
    with server.site(TENANT, b.PEOPLE) as acme:
        yield acme


@pytest.fixture(scope="module")
def live_event(site: b.Site) -> dict[str, Any]:
    return site.event("sam", "Evening show", "public", live=True)


def _message(page: Any, text: str) -> Any:
    return page.locator(f"#chat-messages li:has-text('{text}')")


def test_a_moderator_deletes_a_message_and_it_disappears_for_a_viewer(
    tabs: Any, site: b.Site, live_event: dict[str, Any]
) -> None:
    watch = f"/watch/{live_event['id']}"
    viewer = tabs()
    viewer.sign_in("vera")
    viewer.page.goto(watch)
    viewer.page.wait_for_selector("#chat-form:not([hidden])")
    assert viewer.page.locator("#slow-mode-form").count() == 0  # not a moderator
    onlooker = tabs()  # anonymous, read-only
    onlooker.page.goto(watch)
    onlooker.page.wait_for_selector("#chat-status:has-text('read-only')")
    # nothing to type into or click: `hidden` wins over the form's and reactions' display
    assert onlooker.page.locator("#chat-form").is_hidden()
    assert onlooker.page.locator("#reactions").is_hidden()
    moderator = tabs()  # the event's owner moderates its chat
    moderator.sign_in("sam")
    moderator.page.goto(watch)
    moderator.page.wait_for_selector("#chat-form:not([hidden])")
    moderator.page.get_by_label("Message").fill("Welcome, everyone")
    moderator.page.get_by_role("button", name="Send").click()
    viewer.page.wait_for_selector("#chat-messages li:has-text('Welcome, everyone')")
    # the viewer answers the streamer's message: a reply, shown as one to everyone
    viewer.page.get_by_role("button", name="Reply to Sam Streamer").last.click()
    assert "Replying to Sam Streamer" in viewer.page.locator("#reply-banner").inner_text()
    viewer.page.get_by_label("Message").fill("Thanks Sam")
    viewer.page.get_by_role("button", name="Send").click()
    reply = _message(onlooker.page, "Thanks Sam")
    reply.wait_for(timeout=15_000)
    assert "↪ Sam Streamer" in reply.inner_text()
    # a reaction reaches the other viewers' counters
    viewer.page.get_by_role("button", name="Love").click()
    onlooker.page.wait_for_function(
        "() => Number(document.getElementById('reaction-heart').textContent) >= 1",
        timeout=15_000,
    )
    viewer.page.get_by_label("Message").fill("buy followers cheap")
    viewer.page.get_by_role("button", name="Send").click()
    _message(onlooker.page, "buy followers cheap").wait_for(timeout=15_000)
    spam = _message(moderator.page, "buy followers cheap")
    spam.wait_for(timeout=15_000)
    not_theirs = viewer.page.get_by_role("button", name="Delete the message from Sam Streamer")
    assert not_theirs.count() == 0
    assert b.axe_violations(moderator.page) == []  # with the moderation controls
    moderator.page.screenshot(path=str(b.docs_dir() / "watch-moderator.png"))
    spam.get_by_role("button", name="Delete the message from Vera Viewer").click()
    _message(onlooker.page, "buy followers cheap").wait_for(state="detached", timeout=15_000)
    _message(viewer.page, "buy followers cheap").wait_for(state="detached", timeout=15_000)
    assert _message(onlooker.page, "Thanks Sam").count() == 1  # only that one went
    # gone for a newcomer too (the page's history)
    late = tabs()
    late.page.goto(watch)
    assert _message(late.page, "Thanks Sam").count() == 1
    assert _message(late.page, "buy followers cheap").count() == 0
    # slow mode from the moderation panel, shown to the moderator
    moderator.page.get_by_label("Slow mode").select_option("30")
    moderator.page.get_by_role("button", name="Apply").click()
    moderator.page.wait_for_selector("#slow-mode-state:has-text('Slow mode: 30 s')")
    assert b.axe_violations(viewer.page) == []
    for tab in (viewer, onlooker, moderator, late):
        assert tab.csp_violations() == []


def test_the_channel_page_lists_the_live_event(
    tabs: Any, site: b.Site, live_event: dict[str, Any]
) -> None:
    page = tabs().page
    page.goto(f"/c/{TENANT}")
    live = page.locator("#live-events")
    assert "Evening show" in live.inner_text()
    assert b.axe_violations(page) == []
    page.screenshot(path=str(b.docs_dir() / "channel-page.png"), full_page=True)
    live.get_by_role("link", name="Evening show").click()
    page.wait_for_url(f"{site.base}/watch/{live_event['id']}")
    page.wait_for_function("() => document.querySelector('video').currentTime > 1", timeout=60_000)


def test_follow_a_streamer_from_their_page(
    tabs: Any, site: b.Site, live_event: dict[str, Any]
) -> None:
    tab = tabs()
    tab.sign_in("vera")
    page = tab.page
    page.goto(f"/watch/{live_event['id']}")
    page.get_by_role("link", name="Sam Streamer", exact=True).click()
    page.wait_for_url(f"{site.base}/u/*")
    assert "Evening show" in page.locator("#live-events").inner_text()
    assert page.locator("#follower-count").inner_text() == "0"
    assert b.axe_violations(page) == []
    page.get_by_role("button", name="Follow", exact=True).click()  # htmx swaps the box
    page.get_by_role("button", name="Unfollow", exact=True).wait_for()
    assert page.locator("#follower-count").inner_text() == "1"
    sam = site.api.get("/api/auth/me", headers=site.bearer("sam")).json()["id"]
    profile = site.api.get(f"/api/users/{sam}", headers=site.bearer("vera")).json()
    assert profile["is_following"] is True
    assert b.axe_violations(page) == []
    page.get_by_role("button", name="Unfollow").click()
    page.get_by_role("button", name="Follow", exact=True).wait_for()
    assert page.locator("#follower-count").inner_text() == "0"
    assert tab.csp_violations() == []


def test_the_studio_health_panel_and_key_rotation(
    tabs: Any, site: b.Site, live_event: dict[str, Any]
) -> None:
    tab = tabs()
    tab.sign_in("sam")
    page = tab.page
    page.goto(f"/studio/events/{live_event['id']}")
    page.wait_for_selector("#health-verdict")
    # bitrate and frame rate (a sample may have one before the other: the panel refreshes)
    page.wait_for_function(
        """() => /kb\\/s/.test(document.getElementById('health-bitrate')?.textContent ?? '')
              && /fps/.test(document.getElementById('health-fps')?.textContent ?? '')""",
        timeout=30_000,
    )
    page.wait_for_selector("#recordings:has-text('recording')")
    # the live preview takes its card's width, not the stream's (a 640 px stream overflowed it)
    widths = page.evaluate(
        """() => { const v = document.getElementById('preview'), card = v.closest('section');
                   const pad = parseFloat(getComputedStyle(card).paddingLeft)
                             + parseFloat(getComputedStyle(card).paddingRight);
                   return [v.getBoundingClientRect().width, card.clientWidth - pad]; }"""
    )
    assert abs(widths[0] - widths[1]) < 1, widths
    assert b.axe_violations(page) == []
    page.screenshot(path=str(b.docs_dir() / "studio-health.png"), full_page=True)
    # another event of sam's: a fresh password sign-in counts as recent, no challenge
    other = site.event("sam", "Rotate me", "public", live=False)
    page.goto(f"/studio/events/{other['id']}")
    page.get_by_role("button", name="Reveal the stream key").click()
    old = page.get_by_label("Stream key", exact=True).input_value()
    page.get_by_role("button", name="Rotate the stream key").click()
    page.wait_for_selector("#rotated")
    new = page.get_by_label("New stream key").input_value()
    assert new
    assert new != old
    stream = site.api.get(f"/api/streaming/events/{other['id']}/stream", headers=site.bearer("sam"))
    assert stream.json()["ingest"]["stream_key"] == new
    assert b.axe_violations(page) == []
    assert tab.csp_violations() == []


def test_the_streamer_moderates_the_chat_from_the_studio(tabs: Any, site: b.Site) -> None:
    event = site.event("sam", "Studio chat", "public", live=False)  # its chat is open already
    viewer = tabs()
    viewer.sign_in("vera")
    viewer.page.goto(f"/watch/{event['id']}")
    viewer.page.wait_for_selector("#chat-form:not([hidden])")
    streamer = tabs()
    streamer.sign_in("sam")
    studio = streamer.page
    studio.goto(f"/studio/events/{event['id']}")
    panel = studio.get_by_role("region", name="Chat")
    panel.locator("#chat-status:has-text('Connected')").wait_for(timeout=15_000)
    viewer.page.get_by_label("Message").fill("Can you hear me?")
    viewer.page.get_by_role("button", name="Send").click()
    spam = panel.locator("#chat-messages li", has_text="Can you hear me?")
    spam.wait_for(timeout=15_000)  # live, over the socket: the studio page was not reloaded
    assert "Vera Viewer" in spam.inner_text()
    studio.wait_for_function(  # the viewer's socket; the studio's own is not a viewer's
        "() => Number(document.getElementById('viewer-count').textContent) === 1", timeout=20_000
    )
    assert panel.locator("#chat-viewers").is_visible()
    assert b.axe_violations(studio) == []  # the panel, with a message and its moderation tools
    studio.screenshot(path=str(b.docs_dir() / "studio-chat.png"), full_page=True)
    spam.get_by_role("button", name="Delete the message from Vera Viewer").click()
    _message(viewer.page, "Can you hear me?").wait_for(state="detached", timeout=15_000)
    spam.wait_for(state="detached", timeout=15_000)
    # the streamer answers from the studio; then times the viewer out from there
    panel.get_by_label("Message").fill("Loud and clear")
    panel.get_by_role("button", name="Send").click()
    _message(viewer.page, "Loud and clear").wait_for(timeout=15_000)
    viewer.page.get_by_label("Message").fill("spam again")
    viewer.page.get_by_role("button", name="Send").click()
    again = panel.locator("#chat-messages li", has_text="spam again")
    again.wait_for(timeout=15_000)
    again.get_by_role("button", name="Time out Vera Viewer for 5 minutes").click()
    panel.locator("#chat-error:has-text('Vera Viewer is timed out')").wait_for(timeout=15_000)
    viewer.page.wait_for_selector("#chat-error:has-text('You are timed out')", timeout=15_000)
    assert b.axe_violations(studio) == []
    for tab in (viewer, streamer):
        assert tab.csp_violations() == []


def test_the_ended_state_appears_when_the_stream_stops(tabs: Any, site: b.Site) -> None:
    event = site.event("sam", "Short stream", "public", live=True)
    encoder = site.encoders[-1]
    page = tabs().page
    page.goto(f"/watch/{event['id']}")
    page.wait_for_function("() => document.querySelector('video').currentTime > 1", timeout=60_000)
    assert page.locator("#state-badge").inner_text() == "Live"
    encoder.terminate()  # the encoder goes away: reconnecting, then ended after the window
    encoder.wait(15)
    page.wait_for_selector("#state-badge:has-text('Reconnecting')", timeout=30_000)
    page.wait_for_selector("#state-badge:has-text('Ended')", timeout=90_000)
    assert "ended" in page.locator("#overlay").inner_text()
    assert page.locator("#chat-form").is_hidden()  # the chat is closed: no form to type into
    assert b.axe_violations(page) == []


def test_an_ended_events_recording_plays_on_the_watch_page_and_in_the_studio(
    tabs: Any, site: b.Site
) -> None:
    sam = site.bearer("sam")
    created = site.api.post(
        "/api/events", json={"title": "Recorded talk", "recording": True}, headers=sam
    )
    assert created.status_code == 201, created.text
    event = created.json()
    assert site.api.post(f"/api/events/{event['id']}/start", headers=sam).status_code == 200
    publish_url = event["ingest"]["publish_url"]
    encoder = b.publish(publish_url, site.tmp / "ff-recorded.log")
    site.encoders.append(encoder)

    def status() -> str:
        return str(site.api.get(f"/api/events/{event['id']}", headers=sam).json()["status"])

    b.wait_for(lambda: status() == "live", 30, lambda: site.log.read_text()[-2000:])
    viewer = tabs().page
    viewer.goto(f"/watch/{event['id']}")
    viewer.wait_for_function(
        "() => document.querySelector('video').currentTime > 4", timeout=60_000
    )
    assert site.api.post(f"/api/events/{event['id']}/stop", headers=sam).status_code == 200
    encoder.terminate()
    encoder.wait(15)
    viewer.wait_for_selector("#state-badge:has-text('Ended')", timeout=15_000)

    def ready() -> bool:
        got = site.api.get(f"/api/events/{event['id']}/recordings", headers=sam).json()
        return any(r["status"] == "ready" for r in got)

    b.wait_for(ready, 90, lambda: site.log.read_text()[-3000:])
    page = tabs().page
    page.goto(f"/watch/{event['id']}")
    assert "the recording plays below" in page.locator("#overlay").inner_text()
    page.wait_for_function("() => document.querySelector('video').currentTime > 1", timeout=60_000)
    channel = tabs().page
    channel.goto(f"/c/{TENANT}")
    assert "Recording" in channel.locator("#past-events li", has_text="Recorded talk").inner_text()
    studio = tabs()
    studio.sign_in("sam")
    studio.page.goto(f"/studio/events/{event['id']}")
    video = studio.page.locator("#recordings video.recording")
    video.wait_for(timeout=15_000)
    studio.page.wait_for_function(
        "() => document.querySelector('#recordings video')?.dataset.attached === 'true'"
    )
    video.evaluate("v => { v.muted = true; return v.play(); }")
    studio.page.wait_for_function(
        "() => document.querySelector('#recordings video').currentTime > 1", timeout=60_000
    )
    assert b.axe_violations(studio.page) == []
    assert studio.csp_violations() == []


def _watch_recording_failures(tab: b.Tab) -> list[str]:
    """What went wrong for the browser: console errors, failed requests, 4xx and 5xx answers."""
    failures: list[str] = []
    tab.page.on("console", lambda m: failures.append(m.text) if m.type == "error" else None)
    tab.page.on("requestfailed", lambda r: failures.append(f"{r.url}: {r.failure}"))
    tab.page.on(
        "response", lambda r: failures.append(f"{r.status} {r.url}") if r.status >= 400 else None
    )
    return failures


def test_the_watch_page_opened_at_go_live_starts_without_errors(tabs: Any, site: b.Site) -> None:
    sam = site.bearer("sam")
    event = site.event("sam", "Doors open", "public", live=False)
    assert site.api.post(f"/api/events/{event['id']}/start", headers=sam).status_code == 200
    # one viewer waits on the page before the encoder connects (the socket says "live")
    early = tabs()
    early_failures = _watch_recording_failures(early)
    early.page.goto(f"/watch/{event['id']}")
    early.page.wait_for_selector("#chat-status:has-text('read-only')")
    stream = site.api.get(f"/api/streaming/events/{event['id']}/stream", headers=sam).json()
    site.encoders.append(b.publish(stream["ingest"]["publish_url"], site.tmp / "ff-doors.log"))

    def status() -> str:
        return str(site.api.get(f"/api/events/{event['id']}", headers=sam).json()["status"])

    b.wait_for(lambda: status() == "live", 30, lambda: site.log.read_text()[-2000:])
    # another opens it the moment it is live: no playlist, no thumbnail written yet
    dvr = site.tmp / "media" / "live" / event["playback_id"] / "dvr" / "index.m3u8"
    assert not dvr.exists()
    at_once = tabs()
    failures = _watch_recording_failures(at_once)
    at_once.page.goto(f"/watch/{event['id']}")
    # made before the DVR copy's first segment and the first thumbnail
    assert "dvr" not in (at_once.page.locator("#watch").get_attribute("data-ready") or "")
    assert "poster.svg" in (at_once.page.locator("#video").get_attribute("poster") or "")
    for tab in (at_once, early):
        try:
            tab.page.wait_for_function(
                "() => document.querySelector('video').currentTime > 1", timeout=60_000
            )
        except Exception as exc:
            raise AssertionError("\n".join(tab.console[-40:])) from exc
        assert tab.page.locator("#state-badge").inner_text() == "Live"
        loads = tab.page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
        assert any("/playable" in name for name in loads)  # it asked what was there
    # the page made on air waited for the DVR playlist (its rewind) rather than taking a 404
    loads = at_once.page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
    assert any("/dvr/index.m3u8" in name for name in loads)
    assert failures == []
    assert early_failures == []
