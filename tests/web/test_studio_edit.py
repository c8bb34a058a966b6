"""The studio's edit form in process, on both backends: saved through the events service (the
API sees the change), refused with the form and its message for bad input, a latency mode the
deployment cannot deliver or a stale version (nothing changed); not found for another
tenant's streamer; refused without the CSRF token."""

from __future__ import annotations

import httpx

from bigfootlive.authz.roles import Role
from tests.fixtures.factories import Factory
from tests.web import helpers
from tests.web.test_pages import HTML, _csrf, _signin


async def test_editing_an_event_saves_it_through_the_service(
    client: httpx.AsyncClient, factory: Factory
):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Draft title")
    await _signin(client, tenant.slug, streamer.user.email)
    shown = await client.get(f"/studio/events/{show['id']}/edit", headers=HTML)
    assert shown.status_code == 200
    assert 'value="Draft title"' in shown.text
    token = _csrf(shown)
    url = f"/studio/events/{show['id']}/edit"
    form = {"csrf_token": token, "title": "Launch night", "description": "All of it",
            "visibility": "tenant", "latency_mode": "low", "scheduled_start": "2030-01-02T18:30",
            "dvr_window_minutes": "10", "recording": "true", "version": "1"}  # fmt: skip
    no_token = await client.post(url, data={k: v for k, v in form.items() if k != "csrf_token"})
    assert no_token.status_code == 403
    saved = await client.post(url, data=form, headers=HTML)
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == f"/studio/events/{show['id']}?saved=1"
    got = (await client.get(f"/api/events/{show['id']}", headers=streamer.headers)).json()
    assert (got["title"], got["visibility"], got["latency_mode"]) == (
        "Launch night",
        "tenant",
        "low",
    )
    assert got["dvr_window_seconds"] == 600
    assert got["recording"] is True
    assert got["scheduled_start"].startswith("2030-01-02T18:30")
    form["version"] = str(got["version"])  # the form as drawn again after the save

    for bad, message in (
        ({"dvr_window_minutes": "ten"}, "whole minutes"),
        ({"title": " "}, "Check the fields"),
        ({"latency_mode": "ultra_low"}, "ultra_low latency needs"),
        ({"version": "99"}, "changed by someone else"),
    ):
        refused = await client.post(url, data={**form, "title": "Changed", **bad}, headers=HTML)
        assert 400 <= refused.status_code < 500, (bad, refused.status_code)
        assert 'id="edit-error"' in refused.text
        assert message in refused.text
    after = (await client.get(f"/api/events/{show['id']}", headers=streamer.headers)).json()
    assert after["title"] == "Launch night"  # nothing refused was written


async def test_another_tenants_streamer_gets_not_found(client: httpx.AsyncClient, factory: Factory):
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    show = await helpers.event(client, streamer, "Mine")
    other = await factory.tenant()
    stranger = await factory.user(other, role=Role.STREAMER)
    await _signin(client, other.slug, stranger.user.email)
    page = await client.get(f"/studio/events/{show['id']}/edit", headers=HTML)
    assert page.status_code == 404
    home = await client.get("/studio", headers=HTML)
    posted = await client.post(
        f"/studio/events/{show['id']}/edit",
        data={"csrf_token": _csrf(home), "title": "Taken", "version": "1"},
        headers=HTML,
    )
    assert posted.status_code == 404
    mine = (await client.get(f"/api/events/{show['id']}", headers=streamer.headers)).json()
    assert mine["title"] == "Mine"
