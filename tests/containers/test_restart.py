"""A platform admin restarts an event's container from the console (or the API): the worker is
fenced off and the manager starts a new one; others are refused."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from bigfootlive.authz.roles import Role
from bigfootlive.models import AuditRecord
from tests.containers.helpers import FAST, armed_event, running, streamer, wait_row
from tests.web.test_pages import HTML, _csrf, _signin


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {**FAST, "container_runtime": "inprocess"}


async def test_console_restart_replaces_the_worker(factory, client, state):
    account = await streamer(factory)
    event = await armed_event(client, account)
    first = await wait_row(state, event["id"], running)
    home = await factory.tenant()
    root = await factory.user(home, platform_admin=True, login=False)
    await _signin(client, home.slug, root.user.email)
    listing = await client.get("/platform/containers", headers=HTML)
    assert f"/platform/containers/{event['id']}/restart" in listing.text
    confirm = await client.get(f"/platform/containers/{event['id']}/restart", headers=HTML)
    assert "Yes, restart it" in confirm.text
    done = await client.post(
        f"/platform/containers/{event['id']}/restart",
        data={"csrf_token": _csrf(confirm)},
        headers=HTML,
    )
    assert done.status_code == 303, done.text
    row = await wait_row(
        state, event["id"], lambda r: r.restarts == 1 and running(r) and r.handle != first.handle
    )
    assert row.worker_state["runs"] == 2
    async with state.db.transaction() as session:
        audited = (
            (
                await session.execute(
                    select(AuditRecord).where(AuditRecord.action == "container.restart")
                )
            )
            .scalars()
            .all()
        )
    assert [str(a.target_id) for a in audited] == [event["id"]]
    missing = await client.get(f"/platform/containers/{uuid.uuid4()}/restart", headers=HTML)
    assert missing.status_code == 404


async def test_restart_api_is_for_platform_admins(factory, client, state):
    account = await streamer(factory)
    event = await armed_event(client, account)
    await wait_row(state, event["id"], running)
    admin = await factory.user(await factory.tenant(), role=Role.ADMIN)
    refused = await client.post(f"/api/containers/{event['id']}/restart", headers=admin.headers)
    assert refused.status_code == 403
    root = await factory.user(await factory.tenant(), platform_admin=True)
    accepted = await client.post(f"/api/containers/{event['id']}/restart", headers=root.headers)
    assert accepted.status_code == 202
    await wait_row(state, event["id"], lambda r: r.restarts == 1 and running(r))
    unknown = await client.post(f"/api/containers/{uuid.uuid4()}/restart", headers=root.headers)
    assert unknown.status_code == 404
