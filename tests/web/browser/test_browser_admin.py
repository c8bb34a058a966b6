"""The tenant admin console in headless Chromium against a real `bigfootlive serve` (and the
real OIDC provider of the SSO tests): invitations, roles, the audit export, SSO from a template,
who may not open the console, tenant isolation, and axe-core on every console page.

The package's server and browser (conftest.py); the module's tenants `acme-admin` and
`initech`. Tests run in file order (the later ones use what the earlier ones made: the
provider, the invited member)."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest

from tests.fixtures import browser as b
from tests.fixtures.oidc_provider import OidcProvider

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
NEW_PASSWORD = "invited-member-chooses-77"


TENANT, OTHER = "acme-admin", "initech"


@pytest.fixture(scope="module")
def site(server: b.Server) -> Iterator[b.Site]:
    people = {**b.PEOPLE, "ada": ("Ada Admin", "admin"), "mo": ("Mo Moderator", "moderator")}
    with server.site(TENANT, people) as acme:
        acme.add_user("gus", OTHER, "admin", "Gus Globex")
        yield acme


@pytest.fixture(scope="module")
def idp(site: b.Site) -> Iterator[OidcProvider]:
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
            "alice": {
                "email": f"alice@{TENANT}.com",
                "email_verified": True,
                "name": "Alice Federated",
                "groups": ["streamers"],
            }
        },
    )
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture
def tabs(chromium: Any, site: b.Site) -> Iterator[Any]:
    opened: list[b.Tab] = []

    def tab() -> b.Tab:
        opened.append(b.Tab(chromium, site))
        return opened[-1]

    yield tab
    for t in opened:
        assert t.csp_violations() == [], t.csp_violations()
        t.close()


def test_an_admin_invites_a_member_who_accepts_and_signs_in(tabs: Any, site: b.Site) -> None:
    admin = tabs()
    admin.sign_in("ada")
    page = admin.page
    page.get_by_role("link", name="Admin").click()
    page.wait_for_url(f"{site.base}/admin/users")
    admin.axe_clean()
    page.get_by_role("link", name="Invite a member").click()
    admin.axe_clean()
    page.get_by_label("Email").fill(f"nina@{TENANT}.com")
    page.get_by_label("Name").fill("Nina Newcomer")
    page.get_by_label("Role").select_option("streamer")
    page.get_by_role("button", name="Send the invitation").click()
    page.wait_for_selector("text=Invitation sent.")
    assert page.locator("#member-role").inner_text() == "streamer"
    admin.axe_clean()

    [mail] = b.wait_for(lambda: site.mails_to(f"nina@{TENANT}.com"), 10)
    link = re.search(r"http://\S+/invite/accept\?token=\S+", mail)
    assert link, mail
    invited = tabs()
    invited.page.goto(link.group(0))
    invited.axe_clean()
    invited.page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    invited.page.get_by_label("The same password again").fill(NEW_PASSWORD)
    invited.page.get_by_role("button", name="Set the password and sign in").click()
    invited.page.wait_for_url(f"{site.base}/?welcome=1")
    assert "Signed in as Nina Newcomer" in invited.page.locator(".who").inner_text()
    assert "your password is set" in invited.page.get_by_role("status").inner_text()
    invited.axe_clean()  # the home page with its welcome
    # The link worked once.
    invited.page.goto(link.group(0))
    assert "invalid or has expired" in invited.page.content()
    invited.axe_clean()
    # The admin sees the new member's session.
    page.reload()
    assert page.locator('input[name="session_id"]').count() == 1
    page.screenshot(path=str(b.docs_dir() / "admin-member.png"), full_page=True)


def test_a_role_change_shows_on_the_members_next_page(tabs: Any, site: b.Site) -> None:
    member = tabs()
    member.sign_in("vera")
    assert member.page.get_by_role("link", name="Studio").count() == 0
    admin = tabs()
    admin.sign_in("ada")
    page = admin.page
    page.goto("/admin/users?q=vera")
    page.get_by_role("link", name="Vera Viewer").click()
    admin.axe_clean()
    page.get_by_label("New role").select_option("streamer")
    page.get_by_role("button", name="Change the role").click()
    page.wait_for_selector("text=Role changed.")
    member.page.reload()
    assert member.page.get_by_role("link", name="Studio").count() == 1
    # Disabling asks first; the confirmation page passes axe; cancel keeps the member.
    page.get_by_role("button", name="Disable").click()
    page.wait_for_selector("text=Are you sure?")
    admin.axe_clean()
    page.get_by_role("link", name="Cancel").click()
    assert page.locator("#member-status").inner_text() == "active"


def _api_audit_ids(site: b.Site, action: str) -> set[str]:
    ids: set[str] = set()
    params: dict[str, Any] = {"scope": "tenant", "action": action, "limit": 100}
    while True:
        got = site.api.get("/api/auth/audit", params=params, headers=site.bearer("ada"))
        assert got.status_code == 200, got.text
        ids |= {r["id"] for r in got.json()["items"]}
        if not got.json()["next_cursor"]:
            return ids
        params["cursor"] = got.json()["next_cursor"]


def test_the_audit_export_holds_exactly_the_filtered_records(tabs: Any, site: b.Site) -> None:
    admin = tabs()
    admin.sign_in("ada")
    page = admin.page
    page.goto("/admin/audit")
    admin.axe_clean()
    page.get_by_label("Action").select_option("tenant.role_change")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/admin/audit?*action=tenant.role_change*")
    admin.axe_clean()
    page.screenshot(path=str(b.docs_dir() / "admin-audit.png"), full_page=True)
    expected = _api_audit_ids(site, "tenant.role_change")
    assert expected  # the role change of the previous test
    with page.expect_download() as csv_download:
        page.locator("#export-csv").click()
    rows = list(csv.DictReader(io.StringIO(Path(csv_download.value.path()).read_text())))
    assert {r["id"] for r in rows} == expected
    assert {r["action"] for r in rows} == {"tenant.role_change"}
    with page.expect_download() as jsonl_download:
        page.locator("#export-jsonl").click()
    lines = Path(jsonl_download.value.path()).read_text().splitlines()
    assert {json.loads(line)["id"] for line in lines} == expected
    page.locator("table a").first.click()  # a record's page
    page.wait_for_selector("h1:has-text('tenant.role_change')")
    admin.axe_clean()
    page.goto("/admin/sign-in-settings")
    admin.axe_clean()


def test_an_oidc_provider_from_a_template_and_a_sign_in_through_it(
    tabs: Any, site: b.Site, idp: OidcProvider
) -> None:
    admin = tabs()
    admin.sign_in("ada")
    page = admin.page
    page.goto("/admin/sso")
    admin.axe_clean()
    page.get_by_role("link", name="Keycloak").click()
    admin.axe_clean()
    page.get_by_label("issuer").fill(idp.issuer)
    page.get_by_label("client id").fill("bfl")
    page.get_by_label("scopes").fill("openid email profile groups")
    page.get_by_label("client secret").fill("bfl-secret")
    page.get_by_label("Group to role").fill("streamers = streamer")
    page.get_by_label("Name", exact=True).fill("Acme Keycloak")
    page.get_by_role("button", name="Create the provider").click()
    page.wait_for_selector("text=Saved.")
    assert "bfl-secret" not in page.content()
    assert page.locator("#secrets-set").inner_text() == "client_secret (never shown)"
    admin.axe_clean()
    page.get_by_role("button", name="Test the connection").click()
    page.wait_for_selector("#test-outcome")
    assert page.locator("#test-outcome").inner_text() == "passed", page.content()
    admin.axe_clean()
    page.screenshot(path=str(b.docs_dir() / "admin-sso-test.png"), full_page=True)

    # The SSO sign-in through the API's start and callback URLs (the browser pages for it are
    # another branch's): the browser walks the IdP's own login and consent pages.
    user = tabs()
    upage = user.page
    upage.goto("/")
    started = upage.request.post("/api/auth/sso/initiate", data={"tenant": TENANT})
    assert started.status == 200, started.text()
    upage.goto(started.json()["redirect_url"])
    upage.fill('input[name="login"]', "alice")
    upage.fill('input[name="password"]', "any")
    upage.locator('button[type="submit"]').first.click()
    upage.locator('button[type="submit"]').first.click()  # consent
    upage.wait_for_url(f"{site.base}/api/auth/sso/callback*")
    signed = json.loads(upage.locator("body").inner_text())
    assert signed["user"]["email"] == f"alice@{TENANT}.com"
    assert signed["user"]["role"] == "streamer"


def _admin_urls(site: b.Site) -> list[str]:
    """Every console page, with ids of acme's member, audit record and SSO provider."""
    vera = site.users["vera"]["user"]["id"]  # type: ignore[index]
    record = next(iter(_api_audit_ids(site, "auth.login")))
    providers = site.api.get("/api/tenant/sso/provider", headers=site.bearer("ada")).json()
    if not providers:  # this test alone (the OIDC test creates one): an LDAP provider will do
        body = {
            "name": "Directory",
            "config": {"protocol": "ldap", "url": "ldap://127.0.0.1:1",
                       "bind_dn": "cn=svc,dc=acme,dc=test", "user_search_base": "dc=acme,dc=test"},
            "secrets": {"bind_password": "not-used-here"},
        }  # fmt: skip
        made = site.api.post("/api/tenant/sso/provider", json=body, headers=site.bearer("ada"))
        assert made.status_code == 200, made.text
        providers = [made.json()]
    provider = providers[0]["id"]
    return [
        "/admin/users", "/admin/users/new", f"/admin/users/{vera}", "/admin/audit",
        f"/admin/audit/{record}", "/admin/audit/export?format=csv", "/admin/sign-in-settings",
        "/admin/sso", "/admin/sso/new?template=okta", f"/admin/sso/{provider}",
    ]  # fmt: skip


def test_the_console_and_account_tables_fit_a_phone(tabs: Any, site: b.Site) -> None:
    """At 390 px a table wider than the screen scrolls in its own box; the page does not."""
    admin = tabs()
    admin.sign_in("ada")
    page = admin.page
    page.set_viewport_size({"width": 390, "height": 844})
    for url in ("/admin/users", "/admin/audit", "/account/sessions"):
        page.goto(url)
        table = page.locator("table.events-table").first
        assert table.is_visible(), url
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, url
        box = table.bounding_box()
        assert box is not None, url
        assert box["x"] + box["width"] <= 390, url


def test_a_moderator_cannot_open_the_console(tabs: Any, site: b.Site) -> None:
    moderator = tabs()
    moderator.sign_in("mo")
    assert moderator.page.get_by_role("link", name="Admin").count() == 0
    for url in _admin_urls(site):
        answer = moderator.page.goto(url)
        assert answer is not None
        assert answer.status == 403, url
    moderator.axe_clean()  # the error page


def test_another_tenants_admin_gets_not_found_for_acmes_ids(tabs: Any, site: b.Site) -> None:
    other = tabs()
    other.sign_in("gus")
    page = other.page
    vera = site.users["vera"]["user"]["id"]  # type: ignore[index]
    for url in _admin_urls(site):
        if "/export" in url:  # a download: initech's own records, none of acme's
            exported = page.request.get(url)
            assert exported.status == 200
            assert vera not in exported.text()
            assert site.users["ada"]["user"]["id"] not in exported.text()  # type: ignore[index]
            continue
        answer = page.goto(url)
        assert answer is not None
        has_id = re.search(r"/[0-9a-f]{8}-[0-9a-f-]{27}", url)
        assert answer.status == (404 if has_id else 200), url
        assert "Vera" not in page.content()
        if not has_id:
            other.axe_clean()
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    for action in ("role", "status", "mfa-reset", "invitation", "sessions/end"):
        status = page.evaluate(
            """async ([url, token]) => (await fetch(url, {method: 'POST', headers: {
                 'X-CSRF-Token': token, 'Content-Type': 'application/x-www-form-urlencoded'},
                 body: 'role=viewer&active=false&confirm=yes'})).status""",
            [f"/admin/users/{vera}/{action}", token],
        )
        assert status == 404, action
    page.goto("/admin/users")
    assert "Vera" not in page.content()
    other.axe_clean()


def test_a_sensitive_action_asks_an_admin_with_a_factor_to_step_up(tabs: Any, site: b.Site) -> None:
    site.add_user("tia", TENANT, "admin", "Tia Twofactor")
    admin = tabs()
    admin.sign_in("tia")  # no factor yet: a password session
    setup = site.api.post(
        "/api/auth/mfa/setup", json={"type": "totp", "name": "Phone"}, headers=site.bearer("tia")
    )
    assert setup.status_code == 201, setup.text
    secret = setup.json()["totp"]["secret"]
    totp = pyotp.TOTP(secret)
    confirmed = site.api.post(
        "/api/auth/mfa/setup/confirm",
        json={"factor_id": setup.json()["factor"]["id"], "code": totp.now()},
        headers=site.bearer("tia"),
    )
    assert confirmed.status_code == 200, confirmed.text
    mo = site.users["mo"]["user"]["id"]  # type: ignore[index]
    page = admin.page
    page.goto(f"/admin/users/{mo}")
    page.get_by_role("button", name="Reset two-step verification").click()
    page.get_by_role("button", name="Yes, continue").click()
    page.wait_for_selector("h1:has-text('Confirm it is you')")
    admin.axe_clean()
    page.get_by_label("Code from your authenticator app").fill("000000")
    page.get_by_role("button", name="Confirm").click()
    assert page.get_by_role("alert").count() == 1  # refused, asked again
    next_step = totp.generate_otp(int(time.time()) // 30 + 1)  # after the confirmation's
    page.get_by_label("Code from your authenticator app").fill(next_step)
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(f"{site.base}/admin/users/{mo}")
    page.get_by_role("button", name="Reset two-step verification").click()
    page.get_by_role("button", name="Yes, continue").click()
    page.wait_for_selector("text=Second factors removed.")
