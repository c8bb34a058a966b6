from __future__ import annotations

from bigfootlive.tenants import service as tenants
from tests.realtime.conftest import connect, create_event, join


async def test_deactivated_tenants_members_cannot_connect(client, world, live_server, state):
    event = await create_event(client, world["owner"])
    url = live_server.url(event["id"])
    await join(url, world["viewer"])  # works while the tenant is active

    async with state.db.transaction() as session:
        tenant = await tenants.get_tenant(session, world["tenant"].id)
        assert tenant is not None
        await tenants.set_active(state, session, None, tenant, False)

    refused = await connect(url, world["viewer2"])
    assert await refused.closed_with() == 4401
