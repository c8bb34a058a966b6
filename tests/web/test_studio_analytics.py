"""The studio's analytics panel in process, on both backends: the event's figures and
per-minute charts as the analytics service computes them, the timeline as CSV; refused to a
viewer, sent to sign in when anonymous, not found for another tenant's streamer."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx

from bigfootlive.authz.roles import Role
from bigfootlive.db import utcnow
from bigfootlive.models import AnalyticsMinute
from tests.fixtures.factories import Factory
from tests.web import helpers
from tests.web.test_pages import HTML, _signin

HX = {"hx-request": "true"}


async def test_the_panel_shows_the_events_figures_and_charts(
    client: httpx.AsyncClient, factory: Factory, state
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Launch")
    await _signin(client, tenant.slug, streamer.user.email)
    empty = await client.get(f"/studio/events/{show['id']}/analytics", headers=HX)
    assert empty.status_code == 200
    assert "No minute recorded yet" in empty.text
    start = utcnow().replace(second=0, microsecond=0) - dt.timedelta(minutes=3)
    async with state.db.transaction() as session:
        for i, (viewers, chat) in enumerate([(3, 1), (7, 4), (5, 2)]):
            session.add(
                AnalyticsMinute(
                    tenant_id=tenant.id, event_id=uuid.UUID(show["id"]),
                    minute=start + dt.timedelta(minutes=i), viewers=viewers,
                    watch_ms=viewers * 60_000, chat_messages=chat,
                )
            )  # fmt: skip
    api = await client.get(f"/api/analytics/events/{show['id']}", headers=streamer.headers)
    figures = api.json()
    panel = await client.get(f"/studio/events/{show['id']}/analytics", headers=HX)
    assert panel.status_code == 200
    assert f'id="analytics-peak">{figures["viewers"]["peak"]}<' in panel.text
    assert figures["viewers"]["peak"] == 7
    assert f'id="analytics-chat">{figures["chat"]["messages"]}<' in panel.text
    assert 'id="analytics-watched">15.0<' in panel.text  # 3 + 7 + 5 viewer-minutes
    assert panel.text.count("<polyline") == 2  # viewers and chat per minute
    assert "Viewers per minute over 3 minutes, up to 7" in panel.text
    page = await client.get(f"/studio/events/{show['id']}", headers=HTML)
    assert f'hx-get="/studio/events/{show["id"]}/analytics"' in page.text
    csv = await client.get(f"/studio/events/{show['id']}/analytics.csv")
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    rows = csv.text.strip().splitlines()
    assert len(rows) == 4  # the header and three minutes
    assert [row.split(",")[1] for row in rows[1:]] == ["3", "7", "5"]


async def test_the_panel_is_for_the_events_managers_only(
    client: httpx.AsyncClient, factory: Factory
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Private figures")
    anonymous = await client.get(f"/studio/events/{show['id']}/analytics", headers=HTML)
    assert anonymous.status_code in (302, 303)
    assert anonymous.headers["location"].startswith("/signin?next=")
    viewer = await factory.user(tenant, role=Role.VIEWER)
    await _signin(client, tenant.slug, viewer.user.email)
    refused = await client.get(f"/studio/events/{show['id']}/analytics", headers=HTML)
    assert refused.status_code == 403
    client.cookies.clear()
    other = await factory.tenant()
    stranger = await factory.user(other, role=Role.STREAMER)
    await _signin(client, other.slug, stranger.user.email)
    for path in ("analytics", "analytics.csv"):
        hidden = await client.get(f"/studio/events/{show['id']}/{path}", headers=HTML)
        assert hidden.status_code == 404, path
