"""The tenant admin console's chat words, branding and dashboard in process: what is saved is
what the API and the tenant's watch pages then use; a too-light accent colour and a file that
is not the image it claims are refused; the dashboard's CSV holds one row a day."""

from __future__ import annotations

import csv
import io
import re
import struct
import zlib

import httpx

from bigfootlive.authz.roles import Role
from tests.fixtures.factories import Factory
from tests.web.test_pages import HTML, _csrf, _signin


def _png() -> bytes:
    """A real 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


async def test_blocked_words_are_saved_for_the_chat(client: httpx.AsyncClient, factory: Factory):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    await _signin(client, tenant.slug, admin.user.email)
    form = await client.get("/admin/chat", headers=HTML)
    saved = await client.post(
        "/admin/chat",
        data={"csrf_token": _csrf(form), "words": "spoiler\n  Rude Word \n\nspoiler\n"},
        headers=HTML,
    )
    assert saved.status_code == 303
    info = await client.get("/api/tenant/info", headers=admin.headers)
    assert info.json()["settings"]["chat_blocked_words"] == ["spoiler", "Rude Word"]
    again = await client.get("/admin/chat", headers=HTML)
    assert "Rude Word" in again.text
    too_long = await client.post(
        "/admin/chat", data={"csrf_token": _csrf(form), "words": "x" * 65}, headers=HTML
    )
    assert too_long.status_code == 422


async def test_branding_is_checked_saved_and_shown_on_the_watch_page(
    client: httpx.AsyncClient, factory: Factory
):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    event = await client.post(
        "/api/events", json={"title": "Launch", "visibility": "public"}, headers=admin.headers
    )
    assert event.status_code == 201, event.text
    event_id = event.json()["id"]
    plain = await client.get(f"/watch/{event_id}", headers=HTML)
    assert "tenant-brand" not in plain.text
    await _signin(client, tenant.slug, admin.user.email)
    form = await client.get("/admin/branding", headers=HTML)
    token = _csrf(form)
    light = await client.post(
        "/admin/branding",
        data={"csrf_token": token, "display_name": "Acme TV", "accent_color": "#ffff66"},
        headers=HTML,
    )
    assert light.status_code == 422
    assert "The accent colour is too light" in light.text  # a sentence, capitalised
    fake = await client.post(
        "/admin/branding",
        data={"csrf_token": token, "display_name": "Acme TV", "accent_color": "#5b21b6"},
        files={"logo": ("logo.png", b"<svg onload=alert(1)>", "image/png")},
        headers=HTML,
    )
    assert fake.status_code == 422
    svg = await client.post(
        "/admin/branding",
        data={"csrf_token": token, "display_name": "Acme TV"},
        files={"logo": ("logo.svg", b"<svg/>", "image/svg+xml")},
        headers=HTML,
    )
    assert svg.status_code == 422
    assert "The logo must be a PNG, JPEG or WebP image" in svg.text
    png = _png()
    saved = await client.post(
        "/admin/branding",
        data={"csrf_token": token, "display_name": "Acme TV", "accent_color": "#5B21B6"},
        files={"logo": ("logo.png", png, "image/png")},
        headers=HTML,
    )
    assert saved.status_code == 303, saved.text
    info = await client.get("/api/tenant/info", headers=admin.headers)
    assert info.json()["settings"]["branding"]["accent_color"] == "#5b21b6"

    css = await client.get(f"/branding/{tenant.id}.css")
    assert css.headers["content-type"].startswith("text/css")
    assert "--accent: #5b21b6" in css.text
    logo = await client.get(f"/branding/{tenant.id}/logo")
    assert logo.headers["content-type"] == "image/png"
    assert logo.content == png
    watch = await client.get(f"/watch/{event_id}", headers=HTML)
    assert f'href="/branding/{tenant.id}.css' in watch.text
    assert f'src="/branding/{tenant.id}/logo' in watch.text
    assert "Acme TV" in watch.text

    # the API refuses the same unreadable colour
    api = await client.put(
        "/api/tenant/info",
        json={"settings": {"branding": {"accent_color": "#fafafa"}}},
        headers=admin.headers,
    )
    assert api.status_code == 422
    # another tenant has none
    other = await factory.tenant()
    assert (await client.get(f"/branding/{other.id}/logo")).status_code == 404
    assert (await client.get(f"/branding/{other.id}.css")).text == ""


async def test_dashboard_and_its_csv_export(client: httpx.AsyncClient, factory: Factory):
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN, login=False)
    moderator = await factory.user(tenant, role=Role.MODERATOR, login=False)
    await _signin(client, tenant.slug, moderator.user.email)
    assert (await client.get("/admin/dashboard", headers=HTML)).status_code == 403
    assert (await client.get("/admin/dashboard.csv")).status_code == 403
    client.cookies.clear()
    await _signin(client, tenant.slug, admin.user.email)
    page = await client.get("/admin/dashboard", params={"days": 30}, headers=HTML)
    assert page.status_code == 200
    assert "Usage over the last 30 days" in page.text
    assert page.text.count("data-chart=") == 2
    assert re.search(r'id="live-count">0<', page.text)
    export = await client.get("/admin/dashboard.csv", params={"days": 30})
    assert export.status_code == 200
    assert export.headers["content-disposition"].startswith('attachment; filename="usage-30d-')
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == 30
    assert set(rows[0]) == {
        "day", "minutes_watched", "unique_viewers", "chat_messages", "events", "container_seconds",
    }  # fmt: skip
    assert rows[0]["day"] < rows[-1]["day"]
    bad = await client.get("/admin/dashboard", params={"days": 1000}, headers=HTML)
    assert bad.status_code == 422
