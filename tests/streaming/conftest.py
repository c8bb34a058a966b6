from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from bigfootlive.authz.roles import Role
from tests.fixtures.factories import Account
from tests.fixtures.recorded import payload

SRS_HOOK = "/api/streaming/hooks/srs"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "rtmp_port": 19999}


@dataclass
class Studio:
    admin: Account
    streamer: Account
    viewer: Account
    api_key: str
    client: Any

    @property
    def hook_headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    async def event(self, *, start: bool = True, **fields: Any) -> dict[str, Any]:
        created = await self.client.post(
            "/api/events", json={"title": "Show", **fields}, headers=self.streamer.headers
        )
        assert created.status_code == 201, created.text
        body = created.json()
        if start:
            started = await self.client.post(
                f"/api/events/{body['id']}/start", headers=self.streamer.headers
            )
            assert started.status_code == 200, started.text
        return body

    async def srs(self, name: str, **values: Any) -> Any:
        """An SRS http_hooks callback, its documented body `name` with `values` filled in."""
        return await self.client.post(
            SRS_HOOK,
            content=payload("srs", name, **values),
            headers={**self.hook_headers, "content-type": "application/json"},
        )

    async def live_event(self, **fields: Any) -> dict[str, Any]:
        """An event on air: started, then published to through SRS's `on_publish`."""
        event = await self.event(**fields)
        published = await self.srs(
            "on_publish.json",
            client_id="pub",
            playback_id=event["playback_id"],
            stream_key=event["ingest"]["stream_key"],
        )
        assert (published.status_code, published.text) == (200, "0"), published.text
        return event

    async def status(self, event: dict[str, Any]) -> str:
        response = await self.client.get(
            f"/api/events/{event['id']}", headers=self.streamer.headers
        )
        return str(response.json()["status"])


@pytest.fixture
async def studio(factory, client) -> Studio:
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    created = await client.post("/api/api-keys", json={"name": "media"}, headers=admin.headers)
    assert created.status_code == 201, created.text
    return Studio(
        admin=admin,
        streamer=await factory.user(tenant, role=Role.STREAMER),
        viewer=await factory.user(tenant, role=Role.VIEWER),
        api_key=created.json()["key"],
        client=client,
    )
