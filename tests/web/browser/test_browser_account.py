"""The account pages in headless Chromium against a real server: TOTP enrolment from the page's
key then the TOTP challenge at sign-in; passkey enrolment and passkey sign-in with Chromium's
virtual authenticator (CDP `WebAuthn`); ending another browser's session; axe-core on every page.

The package's server (conftest.py) is named `localhost` (PUBLIC_BASE_URL, so the WebAuthn relying
party): a relying party cannot be an IP address. Chromium maps `localhost` to 127.0.0.1. The
module's tenant: `acme-account`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest

from tests.fixtures import browser as b

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PEOPLE = {
    "tom": ("Tom Totp", "viewer"),
    "paula": ("Paula Passkey", "viewer"),
    "sid": ("Sid Sessions", "viewer"),
}


@pytest.fixture(scope="module")
def site(server: b.Server) -> Iterator[b.Site]:
    with server.site("acme-account", PEOPLE) as acme:
        yield acme


def test_totp_enrolment_then_the_challenge_at_sign_in(tabs: Any, site: b.Site) -> None:
    tab = tabs()
    page = tab.page
    tab.password_step("tom")
    page.wait_for_url(f"{site.base}/")
    page.get_by_role("link", name="Account").click()
    page.wait_for_url(f"{site.base}/account")
    tab.axe_clean()
    page.get_by_role("link", name="Two-step verification").click()
    tab.axe_clean()
    page.get_by_role("button", name="Set up an authenticator app").click()
    page.wait_for_url(f"{site.base}/account/mfa/totp")
    tab.axe_clean()
    qr = page.get_by_role("img", name="QR code of the authenticator app's key")
    src = qr.get_attribute("src") or ""
    assert src.startswith("data:image/svg+xml;base64,")
    assert page.evaluate("document.querySelector('img.qr').naturalWidth") > 0  # it draws
    secret = page.locator("#totp-secret").get_attribute("data-secret") or ""
    shown = page.locator("#totp-secret").inner_text().replace(" ", "")
    assert shown == secret
    totp = pyotp.TOTP(secret)
    step = int(time.time()) // 30
    # a wrong code: the same key and QR code again, to try another code (no starting over)
    near = {totp.generate_otp(step + d) for d in (-1, 0, 1, 2)}
    page.get_by_label("Code from the app").fill(
        next(c for c in ("000000", "111111") if c not in near)
    )
    page.get_by_role("button", name="Confirm").click()
    alert = page.get_by_role("alert").inner_text()
    assert alert == "The verification failed: wrong or expired code. 4 attempts left.", alert
    assert page.locator("#totp-secret").get_attribute("data-secret") == secret
    assert qr.get_attribute("src") == src
    assert page.evaluate("document.querySelector('img.qr').naturalWidth") > 0
    assert secret not in page.url
    tab.axe_clean()
    page.get_by_label("Code from the app").fill(totp.generate_otp(int(time.time()) // 30))
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_selector("#backup-codes")
    codes = page.locator("#backup-codes code").all_inner_texts()
    assert len(codes) == 10
    tab.axe_clean()
    # new backup codes: a sensitive change, so a step-up (this session proved only the password)
    page.goto("/account/security")
    assert not any(code in page.content() for code in codes)  # shown once, never again
    page.get_by_role("button", name="Make new backup codes").click()
    page.wait_for_selector("h1:has-text('Confirm it is you')")
    tab.axe_clean()
    page.get_by_label("a backup code").check()
    page.get_by_label("Code", exact=True).fill(codes[0])
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{site.base}/account/security?verified=1")
    page.get_by_role("button", name="Make new backup codes").click()
    page.wait_for_selector("#backup-codes")
    assert len(set(page.locator("#backup-codes code").all_inner_texts()) & set(codes)) == 0
    # sign out, and the sign-in asks for the app's code
    tab.sign_out()
    tab.password_step("tom")
    page.wait_for_url(f"{site.base}/signin/mfa**")
    tab.axe_clean()
    page.get_by_label("Code", exact=True).fill("000000")
    page.get_by_role("button", name="Verify").click()
    assert "wrong or expired code" in page.get_by_role("alert").inner_text()
    page.get_by_label("Code", exact=True).fill(totp.generate_otp(step + 1))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{site.base}/")
    assert "Signed in as" in page.content()
    assert tab.csp_violations() == []


def _authenticator(tab: b.Tab) -> tuple[Any, str]:
    cdp = tab.context.new_cdp_session(tab.page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def test_passkey_enrolment_and_passkey_sign_in(tabs: Any, site: b.Site) -> None:
    tab = tabs()
    page = tab.page
    cdp, authenticator = _authenticator(tab)
    tab.password_step("paula")
    page.wait_for_url(f"{site.base}/")
    page.goto("/account/security")
    page.get_by_label("Name of the passkey").fill("Laptop")
    page.get_by_role("button", name="Add a passkey").click()
    page.wait_for_url(f"{site.base}/account/mfa/passkey")
    tab.axe_clean()
    page.get_by_role("button", name="Create the passkey").click()
    try:
        page.wait_for_selector("h1:has-text('Second factor added')", timeout=15_000)
    except Exception as exc:
        raise AssertionError(f"{page.content()[-1500:]}\n{tab.console[-10:]}") from exc
    assert "Laptop now protects your account" in page.content()
    assert len(page.locator("#backup-codes code").all_inner_texts()) == 10  # the first factor
    tab.axe_clean()
    held = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert len(held) == 1
    assert held[0]["rpId"] == "localhost"
    page.goto("/account/security")
    assert "Laptop" in page.locator("#factors").inner_text()
    # a second factor on an account that has one: the step-up, answered with the passkey
    page.get_by_role("button", name="Set up an authenticator app").click()
    page.wait_for_selector("h1:has-text('Confirm it is you')")
    tab.axe_clean()
    page.get_by_role("button", name="Use your passkey").click()
    page.wait_for_url(f"{site.base}/account/security?verified=1")
    page.get_by_role("button", name="Set up an authenticator app").click()
    page.wait_for_selector("#totp-secret")  # allowed now
    tab.sign_out()
    # the sign-in's challenge, answered with the passkey
    tab.password_step("paula")
    page.wait_for_url(f"{site.base}/signin/mfa**")
    page.get_by_role("button", name="Use a passkey instead").click()
    page.wait_for_selector("h1:has-text('Sign in with a passkey')")
    tab.axe_clean()
    page.get_by_role("button", name="Use your passkey").click()
    page.wait_for_url(f"{site.base}/")
    assert "Signed in as <strong>Paula Passkey</strong>" in page.content()
    assert (
        cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"][0][
            "signCount"
        ]
        >= 1
    )
    # the session shows the passkey (hwk) as its second factor
    page.goto("/account/sessions")
    assert page.locator("tr.current").count() == 1
    assert tab.csp_violations() == []


def test_ending_another_browsers_session_signs_it_out(tabs: Any, site: b.Site) -> None:
    laptop, phone = tabs(), tabs()
    for tab in (laptop, phone):
        tab.password_step("sid")
        tab.page.wait_for_url(f"{site.base}/")
    phone.page.goto("/account/sessions")
    phone_session = phone.page.locator("tr.current").get_attribute("data-session-id")
    assert phone_session
    page = laptop.page
    page.goto("/account/sessions")
    laptop.axe_clean()
    mine = page.locator("tr.current").get_attribute("data-session-id")
    assert mine != phone_session
    assert "This browser" in page.locator("tr.current").inner_text()
    rows = page.locator("tbody tr").count()
    assert rows >= 3  # both browsers and the test's API session
    row = page.locator(f'tr[data-session-id="{phone_session}"]')
    row.get_by_role("button", name=re.compile("End this session")).click()
    page.wait_for_selector("text=The session is ended")
    assert page.locator("tbody tr").count() == rows - 1
    laptop.axe_clean()

    def signed_out() -> bool:
        phone.page.goto("/account/sessions")
        return phone.page.url.startswith(f"{site.base}/signin")

    b.wait_for(signed_out, 15, lambda: phone.page.url)
    assert "Signed in as" not in phone.page.content()
    assert not [c for c in phone.context.cookies() if c["name"] == "bfl_session"]
    # the laptop is still signed in; its other account pages pass axe too
    for path in ("/account", "/account/password", "/account/notifications"):
        page.goto(path)
        assert "Signed in as" in page.content()
        laptop.axe_clean()
    assert laptop.csp_violations() == []
