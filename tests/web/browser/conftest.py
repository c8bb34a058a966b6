"""The browser tests' shared harness: one `bigfootlive serve` (with its managed nginx-rtmp and
an SMTP sink for its mail) and one headless Chromium for the whole package; each module is a
tenant of its own on that server (`server.site(...)`), each test opens its own browser contexts
(separate cookie jars).

The server has what every module needs: it is named `localhost` (WebAuthn's relying party
cannot be an IP address; Chromium maps the name to 127.0.0.1, where the server listens), SSO and
webhooks may reach loopback (the IdPs and endpoints of the tests), and the per-address sign-in
limit is high (all the modules sign in from 127.0.0.1 within minutes), and the reconnect window
short (a test waits for an event to end after its encoder went away).

Scheduling: the package is one unit of work (tests/fixtures/scheduling.py), so under
`--dist loadfile` all its modules run on one worker and share these fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures import browser as b
from tests.fixtures.services import SMTPSink

SETTINGS = {
    "SSO_ALLOW_PRIVATE_NETWORKS": "true",  # the IdPs listen on loopback
    "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",  # a webhook endpoint on loopback
    "LOGIN_RATE_LIMIT": "200/minute",  # the lockout, not the per-address limit, is tested here
    "RECONNECT_WINDOW_SECONDS": "10",  # a dropped publisher's event ends sooner than in 30 s
}


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[b.Server]:
    sink = SMTPSink()
    sink.start()
    try:
        tmp = tmp_path_factory.mktemp("browser")
        with b.running(tmp, host="localhost", smtp=sink, **SETTINGS) as up:
            yield up
    finally:
        sink.stop()


@pytest.fixture(scope="package")
def chromium(server: b.Server) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = b.launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def tabs(chromium: Any, site: b.Site) -> Iterator[Any]:
    """`tabs()`: a new browser context and page (a `b.Tab`) on the module's site; closed
    after the test."""
    opened: list[b.Tab] = []

    def tab() -> b.Tab:
        opened.append(b.Tab(chromium, site))
        return opened[-1]

    yield tab
    for t in opened:
        t.close()
