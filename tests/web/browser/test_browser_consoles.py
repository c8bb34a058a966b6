"""The platform console and the admin integrations in headless Chromium against a real server
(the package's harness, conftest.py; the module's tenants `acme-consoles` and `globex`): a
platform admin deactivates a tenant and its member's session stops, retries a dead letter; a
tenant admin's new API key is shown once; axe-core finds no serious or critical violation on
any of these pages, and no CSP violation is logged."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bigfootlive.models import AuthSession, DeadJob
from tests.fixtures import browser as b

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

TENANT, OTHER = "acme-consoles", "globex"


@pytest.fixture(scope="module")
def site(server: b.Server) -> Iterator[b.Site]:
    with server.site(TENANT, {"ada": ("Ada Admin", "admin")}) as acme:
        acme.provision(
            TENANT, "Acme", {"pat": ("Pat Platform", "viewer")}, platform_admins=("pat",)
        )
        acme.sign_in_api("pat", TENANT)
        acme.add_user("gus", OTHER, "streamer", "Gus Globex")
        yield acme


class Tab(b.Tab):
    def step_up_if_asked(self) -> bool:
        """Answer the step-up page with the password when the action asked for it."""
        page = self.page
        page.wait_for_load_state()
        if page.get_by_role("heading", name="Confirm it is you").count() == 0:
            return False
        self.clean()
        page.get_by_label("Your password").fill(b.PASSWORD)
        page.get_by_role("button", name="Confirm").click()
        page.wait_for_load_state()
        return True

    def confirm(self, button: str) -> int:
        """Click the confirmation button, answering the step-up page whenever it is asked;
        how many times it was asked."""
        asked = 0
        for _ in range(3):
            self.page.get_by_role("button", name=button).click()
            if not self.step_up_if_asked():
                return asked
            asked += 1
            assert button in self.page.content()  # back at the confirmation
        raise AssertionError("the step-up did not let the action through")

    def clean(self) -> None:
        self.axe_clean()
        assert self.csp_violations() == []

    def signed_in_long_ago(self) -> None:
        """This browser's sign-in made older than the step-up window (MFA_STEP_UP_MAX_AGE_SECONDS,
        900 s): its session's `auth_time` moved back an hour, and its access token dropped, so
        the next request renews it from the refresh token with that `auth_time`."""
        [token] = [c["value"] for c in self.context.cookies() if c["name"] == "bfl_session"]
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        engine = create_engine(f"sqlite:///{self.site.tmp}/bigfootlive.db")
        try:
            with Session(engine) as session:
                signed_in = session.get(AuthSession, uuid.UUID(claims["sid"]))
                assert signed_in is not None
                signed_in.auth_time -= dt.timedelta(hours=1)
                session.commit()
        finally:
            engine.dispose()
        self.context.clear_cookies(name="bfl_session")
        self.page.reload()


@pytest.fixture
def tabs(chromium: Any, site: b.Site) -> Iterator[Any]:
    opened: list[Tab] = []

    def tab() -> Tab:
        opened.append(Tab(chromium, site))
        return opened[-1]

    yield tab
    for t in opened:
        t.close()


def _api_login(site: b.Site, who: str) -> str:
    person = site.users[who]
    answer = site.api.post(
        "/api/auth/login",
        json={"tenant": person["tenant"], "email": person["email"], "password": b.PASSWORD},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def test_platform_admin_deactivates_a_tenant_and_its_sessions_stop(tabs: Any, site: b.Site) -> None:
    member = tabs()
    member.sign_in("gus")
    bearer = {"Authorization": f"Bearer {_api_login(site, 'gus')}"}
    assert site.api.get("/api/events", headers=bearer).status_code == 200

    root = tabs()
    root.sign_in("pat")
    page = root.page
    page.get_by_role("link", name="Platform").click()
    page.wait_for_url(f"{site.base}/platform")
    page.wait_for_selector("#watch-chart[data-drawn=true]")  # uPlot drew under the CSP
    root.clean()
    for name, path in (("Containers", "/platform/containers"), ("Jobs", "/platform/jobs")):
        page.get_by_role("navigation", name="Platform console").get_by_role(
            "link", name=name
        ).click()
        page.wait_for_url(f"{site.base}{path}")
        root.clean()
    page.get_by_role("link", name="Tenants", exact=True).click()
    page.wait_for_url(f"{site.base}/platform/tenants")
    root.clean()
    page.get_by_role("link", name="Globex").click()
    root.clean()
    page.get_by_role("link", name="Deactivate…").click()
    assert "signed out on their next request" in page.content()
    root.clean()
    assert member.page.evaluate("async () => (await fetch('/session')).status") == 204
    # signed in longer ago than the step-up window: asked, and the password lets it through
    root.signed_in_long_ago()
    assert root.confirm("Yes, deactivate globex") == 1
    page.wait_for_function(
        "document.getElementById('tenant-status')?.textContent === 'deactivated'"
    )
    root.clean()

    # the member's next page is signed out, their page's session check and the API answer 401
    member.page.goto("/")
    assert "Signed in as" not in member.page.content()
    assert member.page.evaluate("async () => (await fetch('/session')).status") == 401
    assert site.api.get("/api/events", headers=bearer).status_code == 401
    refused = site.api.post(
        "/api/auth/login",
        json={"tenant": OTHER, "email": site.users["gus"]["email"], "password": b.PASSWORD},
    )
    assert refused.status_code in (401, 403)

    page.get_by_role("link", name="Activate…").click()
    root.confirm("Yes, activate globex")
    page.wait_for_function("document.getElementById('tenant-status')?.textContent === 'active'")
    assert site.api.get("/api/events", headers=bearer).status_code == 200


def _dead_letter(tmp: Path) -> uuid.UUID:
    """A dead letter as the worker leaves one, written to the server's SQLite database."""
    engine = create_engine(f"sqlite:///{tmp}/bigfootlive.db")
    try:
        with Session(engine) as session:
            row = DeadJob(
                message_id=uuid.uuid4().hex,
                queue="low",
                task="jobs.tasks.purge_job_records",
                kwargs={},
                attempts=4,
                error="RuntimeError: the database was away",
            )
            session.add(row)
            session.commit()
            return row.id
    finally:
        engine.dispose()


def test_a_dead_letter_is_retried_from_the_console(tabs: Any, site: b.Site) -> None:
    dead_id = _dead_letter(site.tmp)
    root = tabs()
    root.sign_in("pat")
    page = root.page
    page.goto("/platform/jobs")
    assert page.locator(f"#dead-{dead_id}").count() == 1
    root.clean()
    page.locator(f"#dead-{dead_id}").get_by_role("link", name=re.compile("^Discard")).click()
    assert "Yes, discard it" in page.content()
    root.clean()
    page.get_by_role("link", name="Cancel").click()
    page.locator(f"#dead-{dead_id}").get_by_role("button", name=re.compile("^Retry")).click()
    page.wait_for_selector("text=The job was put back on its queue.")
    assert page.locator(f"#dead-{dead_id}").count() == 0
    root.clean()
    token = _api_login(site, "pat")
    left = site.api.get("/api/platform/jobs/dead", headers={"Authorization": f"Bearer {token}"})
    assert str(dead_id) not in left.text


def test_an_api_key_is_shown_once(tabs: Any, site: b.Site) -> None:
    admin = tabs()
    admin.sign_in("ada")
    page = admin.page
    page.get_by_role("link", name="Admin").click()
    page.goto("/admin/api-keys")
    admin.clean()
    page.get_by_label("Name").fill("Encoder callbacks")
    page.get_by_role("button", name="Create the key").click()
    secret = page.locator("#new-key").inner_text()
    assert secret.startswith("bfk_")
    admin.clean()
    # the key authorizes the media-server callbacks (an empty callback: 400, not 401)
    hook = site.api.post("/api/streaming/hooks/nginx-rtmp", headers={"X-API-Key": secret})
    assert hook.status_code == 400
    page.goto("/admin/api-keys")
    assert secret not in page.content()
    assert "Encoder callbacks" in page.content()
    page.get_by_role("link", name="Revoke Encoder callbacks").click()
    admin.clean()
    page.get_by_role("button", name="Yes, revoke it").click()
    page.wait_for_url(f"{site.base}/admin/api-keys")
    assert "revoked" in page.content()
    hook = site.api.post("/api/streaming/hooks/nginx-rtmp", headers={"X-API-Key": secret})
    assert hook.status_code == 401
    page.goto("/admin/webhooks")
    admin.clean()
    page.get_by_label("URL").fill("http://127.0.0.1:9/hook")
    page.get_by_label("event.live").check()
    page.get_by_role("button", name="Add the endpoint").click()
    assert page.locator("#new-secret").inner_text()  # the signing secret, shown once
    admin.clean()
    page.get_by_role("link", name="http://127.0.0.1:9/hook").first.click()
    page.wait_for_selector("h2#log-title")
    assert "No deliveries yet." in page.content()
    admin.clean()
    page.get_by_role("button", name="Save").click()  # the edit form, saved as it is
    page.wait_for_selector("text=Saved.")
    nav = page.get_by_role("navigation", name="Admin console")
    nav.get_by_role("link", name="Dashboard").click()
    page.wait_for_selector("#watch-chart[data-drawn=true]")
    admin.clean()
    page.get_by_label("Period").select_option("30")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(f"{site.base}/admin/dashboard?days=30")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export as CSV").click()
    rows = Path(download.value.path()).read_text().strip().splitlines()
    assert len(rows) == 31  # the header and one row a day
    for name in ("Chat", "Branding"):
        nav.get_by_role("link", name=name).click()
        page.wait_for_url(f"{site.base}/admin/{name.lower()}")
        admin.clean()
    page.get_by_label("Accent colour", exact=False).fill("#ffff66")
    page.get_by_role("button", name="Save").click()
    assert "too light" in page.get_by_role("alert").inner_text()
    admin.clean()


def test_a_charts_y_axis_is_as_wide_as_its_labels(tabs: Any, site: b.Site) -> None:
    """A chart of thousands (container-seconds) kept uPlot's fixed 50 px axis: "1000 s" showed
    as ".000 s". A chart drawn by the page's own module, run once more, must fit its labels."""
    admin = tabs()
    admin.sign_in("ada")
    page = admin.page
    page.goto("/admin/dashboard")
    page.wait_for_selector("#compute-chart[data-drawn=true]")
    page.evaluate(
        """async () => {
            const el = document.createElement('div');
            el.className = 'chart';
            el.id = 'big-chart';
            el.dataset.unit = 's';
            el.dataset.chart = JSON.stringify({x: [1764892800, 1764979200],
              series: [{label: 'Container-seconds', values: [0, 123456]}]});
            document.querySelector('main').append(el);
            await import(document.querySelector('script[src*="charts.mjs"]').src + '&again=1');
        }"""
    )
    page.wait_for_selector("#big-chart[data-drawn=true]")
    left, widest = page.evaluate(
        """() => { const u = document.getElementById('big-chart').chart, axis = u.axes[1];
                   u.ctx.font = axis.font[0];
                   return [u.bbox.left,
                           Math.max(...axis._values.map((v) => u.ctx.measureText(v).width))]; }"""
    )
    assert widest > 40  # "120000 s": wider than most
    assert left >= widest, (left, widest)
    admin.clean()
