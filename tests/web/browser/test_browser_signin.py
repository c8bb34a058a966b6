"""The sign-in pages in headless Chromium against a real `bigfootlive serve` (the package's
harness, conftest.py; the module's tenants `acme-signin` and `umbrella`): single sign-on through
the real OIDC provider of the SSO tests, a password reset whose link is read from the SMTP sink,
the MFA challenge by emailed code, the lockout message; axe-core (no serious or critical
violation) on every page these open."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures import browser as b
from tests.fixtures.oidc_provider import OidcProvider
from tests.fixtures.services import SMTPSink, body_of
from tests.fixtures.slapd import Slapd
from tests.sso.conftest import ldap_body

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

NEW_PASSWORD = "harbour-thistle-compass-71"


TENANT, DIRECTORY_TENANT = "acme-signin", "umbrella"


@pytest.fixture(scope="module")
def site(server: b.Server) -> Iterator[b.Site]:
    with server.site(TENANT, {}) as acme:
        yield acme


@pytest.fixture(scope="module")
def smtp(site: b.Site) -> SMTPSink:
    assert site.smtp is not None
    return site.smtp


@pytest.fixture
def page(chromium: Any, site: b.Site) -> Iterator[Any]:
    context = chromium.new_context(base_url=site.base, viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    console: list[str] = []
    tab.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    yield tab
    assert [line for line in console if "Content Security Policy" in line] == []
    context.close()


def _member(site: b.Site, who: str, role: str = "viewer", tenant: str = TENANT) -> str:
    """A member of the tenant with PASSWORD (as `bigfootlive user create` makes one); its
    email."""
    site.provision(tenant, tenant.title(), {who: (who.title(), role)})
    return f"{who}@{tenant}.com"


def _mail(smtp: SMTPSink, to: str, count: int = 1) -> str:
    found = b.wait_for(lambda: len(smtp.to(to)) >= count and smtp.to(to), 15)
    return body_of(found[count - 1])


def _no_violations(page: Any) -> None:
    assert b.axe_violations(page) == [], page.url


def _provider(site: b.Site, admin: str, tenant: str, body: dict[str, Any]) -> None:
    login = site.api.post(
        "/api/auth/login", json={"tenant": tenant, "email": admin, "password": b.PASSWORD}
    )
    assert login.status_code == 200, login.text
    saved = site.api.post(
        "/api/tenant/sso/provider",
        json={"name": "Directory", **body},
        headers={"Authorization": f"Bearer {login.json()['access_token']}"},
    )
    assert saved.status_code == 200, saved.text


@pytest.fixture(scope="module")
def idp(site: b.Site) -> Iterator[OidcProvider]:
    """The SSO tests' node oidc-provider, its client calling back to this server; the module's
    tenant uses it."""
    provider = OidcProvider(
        clients=[
            {
                "client_id": "bfl",
                "client_secret": "bfl-secret",
                "redirect_uris": [f"{site.base}/api/auth/sso/callback"],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
            }
        ],
        accounts={
            "olga": {"email": f"olga@{TENANT}.com", "email_verified": True, "name": "Olga Oidc"}
        },
    )
    provider.start()
    try:
        admin = _member(site, "ada", "admin")
        login = site.api.post(
            "/api/auth/login", json={"tenant": TENANT, "email": admin, "password": b.PASSWORD}
        )
        assert login.status_code == 200, login.text
        saved = site.api.post(
            "/api/tenant/sso/provider",
            json={
                "name": "Acme IdP",
                "config": {
                    "protocol": "oidc",
                    "issuer": provider.issuer,
                    "client_id": "bfl",
                    "scopes": ["openid", "email", "profile"],
                },
                "secrets": {"client_secret": "bfl-secret"},
                "default_role": "viewer",
            },
            headers={"Authorization": f"Bearer {login.json()['access_token']}"},
        )
        assert saved.status_code == 200, saved.text
        yield provider
    finally:
        provider.stop()


def test_sign_in_through_the_oidc_provider(page: Any, site: b.Site, idp: OidcProvider) -> None:
    page.goto("/signin")
    page.get_by_role("link", name="Sign in with your organisation (single sign-on)").click()
    page.wait_for_url(f"{site.base}/signin/sso**")
    _no_violations(page)
    page.get_by_label("Work email").fill(f"olga@{TENANT}.com")
    page.get_by_label("Organisation").fill(TENANT)
    # the hand-off page, held still (its module would leave at once) for the accessibility check
    page.route("**/static/js/sso.mjs*", lambda route: route.abort())
    page.get_by_role("button", name="Continue").click()
    page.wait_for_selector("#sso-continue")
    _no_violations(page)
    page.unroute("**/static/js/sso.mjs*")
    page.get_by_role("link", name="Continue to your organisation's sign-in page").click()
    # the provider's own pages (node oidc-provider's development login, then consent)
    page.wait_for_url(f"{idp.issuer}/**")
    page.locator("input[name=login]").fill("olga")
    page.locator("input[name=password]").fill("any")
    page.locator("button[type=submit]").click()

    def back_home() -> bool:
        if page.url == f"{site.base}/":
            return True
        consent = page.locator("button[type=submit]")
        if page.url.startswith(idp.issuer) and consent.count() == 1 and "login" not in page.url:
            consent.click()
        return False

    b.wait_for(back_home, 30, lambda: page.url)
    assert "Signed in as Olga Oidc" in page.locator("header").inner_text()
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["bfl_session"]["httpOnly"]
    assert "bfl_sso" not in cookies
    _no_violations(page)


def test_password_reset_end_to_end(page: Any, site: b.Site, smtp: SMTPSink) -> None:
    email = _member(site, "rita")
    page.goto("/signin")
    page.get_by_role("link", name="Forgotten your password?").click()
    page.wait_for_url(f"{site.base}/forgot-password")
    _no_violations(page)
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Organisation").fill(TENANT)  # no email domain to find it by
    page.get_by_role("button", name="Send me a link").click()
    page.wait_for_selector("h1:has-text('Check your email')")
    _no_violations(page)
    link = re.search(r"(http://\S+/reset-password\?token=\S+)", _mail(smtp, email))
    assert link, _mail(smtp, email)
    page.goto(link.group(1))
    _no_violations(page)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD + "-typo")
    page.get_by_role("button", name="Set the new password").click()
    assert "differ" in page.get_by_role("alert").inner_text()
    _no_violations(page)  # the form with its error
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set the new password").click()
    page.wait_for_selector("h1:has-text('Password changed')")
    _no_violations(page)
    page.get_by_role("link", name="Sign in with the new password").click()
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Organisation").fill(TENANT)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{site.base}/")
    assert "Signed in as Rita" in page.locator("header").inner_text()
    page.goto(link.group(1))  # spent
    assert "invalid, expired or already used" in page.get_by_role("alert").inner_text()
    _no_violations(page)


def test_mfa_challenge_with_an_emailed_code(page: Any, site: b.Site, smtp: SMTPSink) -> None:
    email = _member(site, "emma")
    login = site.api.post(
        "/api/auth/login", json={"tenant": TENANT, "email": email, "password": b.PASSWORD}
    )
    bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
    setup = site.api.post("/api/auth/mfa/setup", json={"type": "email"}, headers=bearer)
    assert setup.status_code == 201, setup.text
    code = re.search(r"\b(\d{6})\b", _mail(smtp, email)).group(1)  # type: ignore[union-attr]
    confirm = site.api.post(
        "/api/auth/mfa/setup/confirm",
        json={"factor_id": setup.json()["factor"]["id"], "code": code},
        headers=bearer,
    )
    assert confirm.status_code == 200, confirm.text
    page.goto("/signin")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(b.PASSWORD)
    page.get_by_label("Organisation").fill(TENANT)
    page.get_by_role("button", name="Sign in").click()
    # no authenticator app: the challenge starts with the codes it can be sent
    page.wait_for_url(f"{site.base}/signin/mfa/other**")
    _no_violations(page)
    page.get_by_role("button", name=re.compile("Email a code to")).click()
    page.wait_for_selector("text=We sent a code to")
    _no_violations(page)
    page.get_by_label("Code from the email").fill("000000" if code != "000000" else "111111")
    page.get_by_role("button", name="Verify").click()
    assert "attempts left" in page.get_by_role("alert").inner_text()
    _no_violations(page)
    sent = _mail(smtp, email, count=3)  # enrolment code, "factor added" notice, this code
    page.get_by_label("Code from the email").fill(re.search(r"\b(\d{6})\b", sent).group(1))  # type: ignore[union-attr]
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{site.base}/")
    assert "Signed in as Emma" in page.locator("header").inner_text()
    page.goto("/signin/mfa/backup")  # the challenge is over (signed in: the sign-in form
    assert page.url == f"{site.base}/"  # sends a signed-in visitor on)


def test_lockout_message_and_the_other_pages(page: Any, site: b.Site) -> None:
    email = _member(site, "lou")
    page.goto("/signin")
    for _ in range(10):
        page.get_by_label("Email", exact=True).fill(email)
        page.get_by_label("Password", exact=True).fill("wrong-password-1234")
        page.get_by_label("Organisation").fill(TENANT)
        page.get_by_role("button", name="Sign in").click()
        alert = page.get_by_role("alert").inner_text()
        if "Too many" in alert:
            break
        assert alert == "The email or password is incorrect"
    assert re.fullmatch(r"Too many failed sign-ins; try again in \d+ seconds", alert), alert
    _no_violations(page)
    page.goto("/verify-email?token=" + "x" * 43)  # the confirmation page, before its POST
    assert page.get_by_role("button", name="Confirm my email address").is_visible()
    _no_violations(page)
    page.goto("/reset-password?token=not-issued-here")
    assert "invalid, expired or already used" in page.get_by_role("alert").inner_text()
    _no_violations(page)


def test_ldap_sign_in_on_the_directory_form(
    page: Any, site: b.Site, tmp_path_factory: pytest.TempPathFactory
) -> None:
    directory = Slapd(tmp_path_factory.mktemp("slapd"))
    directory.start()
    try:
        admin = _member(site, "gina", "admin", DIRECTORY_TENANT)
        _provider(site, admin, DIRECTORY_TENANT, ldap_body(directory))
        page.goto("/signin/sso")
        page.get_by_label("Work email").fill("alice@acme.example.com")
        page.get_by_label("Organisation").fill(DIRECTORY_TENANT)
        page.get_by_role("button", name="Continue").click()
        page.wait_for_selector("h1:has-text('Sign in with your directory account')")
        _no_violations(page)
        page.get_by_label("Directory user name").fill("alice")
        page.get_by_label("Directory password").fill("not-her-password")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector("[role=alert]")
        _no_violations(page)  # the form with its error
        page.get_by_label("Directory password").fill("alicepw")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{site.base}/")
        assert "Signed in as Alice Streamer" in page.locator("header").inner_text()
    finally:
        directory.stop()
