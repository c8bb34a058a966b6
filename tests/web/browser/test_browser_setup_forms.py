"""Forms a new user met without a way through, in headless Chromium against a real server, at a
phone's width (390 px): the studio's simulcast form (add with the key masked, a refusal worded as
the API's, remove); a studio panel opened directly (its title and the way back); Cancel in the
guided MFA set-up at sign-in (back to the sign-in, nothing left half set up); Start again on the
account page once the wrong codes ran out (a new key), then Cancel. axe-core on every page.

The module's tenant: `acme-forms`, whose moderators must set up two-step verification."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest

from tests.fixtures import browser as b

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PEOPLE = {
    "ada": ("Ada Admin", "admin"),
    "sam": ("Sam Streamer", "streamer"),
    "mia": ("Mia Moderator", "moderator"),
    "val": ("Val Viewer", "viewer"),
}
PHONE = {"width": 390, "height": 844}
KEY = "live_0123456789_abcdefSECRET"


@pytest.fixture(scope="module")
def site(server: b.Server) -> Iterator[b.Site]:
    with server.site("acme-forms", PEOPLE) as acme:
        changed = acme.api.put(
            "/api/tenant/info",
            json={"settings": {"mfa": {"mode": "required_for_roles", "roles": ["moderator"]}}},
            headers=acme.bearer("ada"),
        )
        assert changed.status_code == 200, changed.text
        yield acme


def _fits(page: Any) -> None:
    """Nothing wider than the phone: the page does not scroll sideways."""
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], page.url


def _wrong(secret: str) -> str:
    totp, step = pyotp.TOTP(secret), int(time.time()) // 30
    near = {totp.generate_otp(step + d) for d in (-1, 0, 1, 2)}
    return next(c for c in ("000000", "111111", "222222") if c not in near)


def test_the_simulcast_form_adds_and_removes_a_destination(tabs: Any, site: b.Site) -> None:
    event = site.event("sam", "Everywhere at once", "public", live=False)
    tab = tabs()
    page = tab.page
    page.set_viewport_size(PHONE)
    tab.sign_in("sam")
    page.goto(f"/studio/events/{event['id']}")
    page.wait_for_selector("#no-simulcast")
    _fits(page)
    tab.axe_clean()
    form = page.locator("#simulcast-form")
    assert form.get_by_label("Destination stream key").get_attribute("type") == "password"
    # a custom server without its URL: refused with the API's words, the key not sent back
    form.get_by_label("Platform").select_option(label="Custom (any rtmp:// or rtmps:// server)")
    form.get_by_label("Name").fill("My relay")
    form.get_by_label("Destination stream key").fill(KEY)
    form.get_by_role("button", name="Add the destination").click()
    page.wait_for_selector("#simulcast-error")
    alert = page.get_by_role("alert").inner_text()
    assert alert == "A custom destination needs its rtmp:// or rtmps:// URL", alert
    assert page.title() == "Simulcast · Everywhere at once · Studio · BigfootLive"
    assert page.get_by_label("Destination stream key").input_value() == ""
    assert page.get_by_label("Name").input_value() == "My relay"
    assert KEY not in page.content()
    _fits(page)
    tab.axe_clean()
    # with its URL, added: back on the event page, the key only masked
    page.get_by_label("Server URL").fill("rtmps://relay.example.com/live")
    page.get_by_label("Destination stream key").fill(KEY)
    page.get_by_role("button", name="Add the destination").click()
    page.wait_for_url(f"{site.base}/studio/events/{event['id']}?simulcast=added*")
    assert "Destination added" in page.locator("#simulcast-status").inner_text()
    row = page.locator("#simulcast-table tbody tr")
    row.wait_for()
    assert "My relay" in row.inner_text()
    assert "…" + KEY[-4:] in row.inner_text()
    assert KEY not in page.content()
    assert (
        page.locator("#simulcast-form").get_by_label("Destination stream key").input_value() == ""
    )
    _fits(page)
    tab.axe_clean()
    listed = site.api.get(f"/api/events/{event['id']}/simulcast", headers=site.bearer("sam"))
    assert [d["url"] for d in listed.json()] == ["rtmps://relay.example.com/live"]
    page.get_by_role("button", name="Remove My relay").click()
    page.wait_for_url(f"{site.base}/studio/events/{event['id']}?simulcast=removed*")
    page.wait_for_selector("#no-simulcast")
    assert (
        site.api.get(f"/api/events/{event['id']}/simulcast", headers=site.bearer("sam")).json()
        == []
    )
    assert tab.csp_violations() == []


def test_a_panel_opened_directly_has_its_title_and_the_way_back(tabs: Any, site: b.Site) -> None:
    event = site.event("sam", "Panel night", "public", live=False)
    tab = tabs()
    page = tab.page
    page.set_viewport_size(PHONE)
    tab.sign_in("sam")
    for path, title in (("analytics", "Analytics"), ("health", "Stream health")):
        page.goto(f"/studio/events/{event['id']}/{path}")
        assert page.title() == f"{title} · Panel night · Studio · BigfootLive"
        assert page.get_by_role("heading", level=1).inner_text() == title
        _fits(page)
        tab.axe_clean()
    page.get_by_role("link", name="← Back to Panel night").click()
    page.wait_for_url(f"{site.base}/studio/events/{event['id']}")
    assert page.get_by_role("heading", level=1).inner_text() == "Panel night"


def test_cancel_in_the_set_up_at_sign_in(tabs: Any, site: b.Site) -> None:
    tab = tabs()
    page = tab.page
    page.set_viewport_size(PHONE)
    tab.password_step("mia")
    page.wait_for_url(f"{site.base}/signin/mfa/enrol**")
    tab.axe_clean()
    page.get_by_role("button", name="Set up an authenticator app").click()
    secret = page.locator("#totp-secret").get_attribute("data-secret") or ""
    assert secret
    _fits(page)
    tab.axe_clean()
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_url(f"{site.base}/signin?next=**")
    assert "you are not signed in" in page.get_by_role("status").inner_text()
    assert "Signed in as" not in page.content()
    tab.axe_clean()
    page.goto("/account")  # not signed in: to the sign-in page
    page.wait_for_url(f"{site.base}/signin?next=**")
    # signing in again starts over: a new key (the cancelled set-up is gone)
    tab.password_step("mia")
    page.wait_for_url(f"{site.base}/signin/mfa/enrol**")
    page.get_by_role("button", name="Set up an authenticator app").click()
    fresh = page.locator("#totp-secret").get_attribute("data-secret") or ""
    assert fresh not in ("", secret)
    page.get_by_label("Code from the app").fill(pyotp.TOTP(fresh).now())
    page.get_by_role("button", name="Confirm and sign in").click()
    page.wait_for_selector("#backup-codes")
    page.goto("/account/security")
    assert page.locator("strong", has_text="Authenticator app").count() == 1  # one, not two
    assert tab.csp_violations() == []


def test_start_again_once_the_wrong_codes_ran_out_then_cancel(tabs: Any, site: b.Site) -> None:
    tab = tabs()
    page = tab.page
    page.set_viewport_size(PHONE)
    tab.sign_in("val")
    page.goto("/account/security")
    page.get_by_role("button", name="Set up an authenticator app").click()
    page.wait_for_url(f"{site.base}/account/mfa/totp")
    secret = page.locator("#totp-secret").get_attribute("data-secret") or ""
    for left in (4, 3, 2, 1, 0):
        page.get_by_label("Code from the app").fill(_wrong(secret))
        page.get_by_role("button", name="Confirm").click()
        alert = page.get_by_role("alert").inner_text()
        assert alert.endswith(f"{left} attempt{'s' if left != 1 else ''} left."), alert
    assert page.get_by_label("Code from the app").count() == 0  # nothing left to try
    assert page.locator("#totp-secret").count() == 0
    _fits(page)
    tab.axe_clean()
    page.get_by_role("button", name="Start again").click()
    fresh = page.locator("#totp-secret").get_attribute("data-secret") or ""
    assert fresh not in ("", secret)  # a new key
    assert page.get_by_label("Code from the app").is_visible()
    _fits(page)
    tab.axe_clean()
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_url(f"{site.base}/account/security?cancelled=1")
    assert "The set-up was cancelled: nothing was added." in page.content()
    assert "None yet" in page.content()
    tab.axe_clean()
    factors = site.api.get("/api/auth/mfa/factors", headers=site.bearer("val")).json()
    assert factors["factors"] == []  # neither set-up left behind
    assert tab.csp_violations() == []
