"""Two API processes (`bigfootlive serve`) on the Redis Cluster the harness started, sharing the
PostgreSQL database: chat fans out across them (sharded pub/sub), a logout on one is refused at
once on the other, a rate limit counts the hits on both, and a media-server callback taken by
one is seen by the other. The slowest test here (two server processes start: ~10-60 s)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bigfootlive.authz.roles import Role
from bigfootlive.config import Settings
from tests.fixtures.factories import Factory
from tests.fixtures.processes import spawner
from tests.fixtures.recorded import payload
from tests.realtime.conftest import create_event, join
from tests.realtime.test_processes import ServerProcess

CHAT_LIMIT = 6  # per minute and user, counted across the processes


class ClusterServer(ServerProcess):
    def env(self) -> dict[str, str]:
        values = super().env()
        values["CHAT_RATE_LIMIT"] = f"{CHAT_LIMIT}/minute"
        return values


spawn = spawner(ClusterServer)


async def _chat(http: httpx.AsyncClient, event_id: str, account: Any, body: str) -> int:
    response = await http.post(
        f"/api/events/{event_id}/chat", json={"body": body}, headers=account.headers
    )
    assert response.status_code in (201, 429), response.text
    return response.status_code


@pytest.mark.timeout(360)
async def test_two_processes_share_chat_revocation_rate_limits_and_callbacks(
    settings: Settings,
    factory: Factory,
    client: httpx.AsyncClient,
    spawn: Callable[[], ClusterServer],
) -> None:
    assert settings.uses_redis_cluster
    a, b = await asyncio.gather(asyncio.to_thread(spawn), asyncio.to_thread(spawn))
    tenant = await factory.tenant()
    owner = await factory.user(tenant, role=Role.STREAMER)
    viewer = await factory.user(tenant, role=Role.VIEWER)
    talker = await factory.user(tenant, role=Role.VIEWER)
    leaver = await factory.user(tenant, role=Role.VIEWER)
    admin = await factory.user(tenant, role=Role.ADMIN)
    event = await create_event(client, owner)
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{a.port}", timeout=20) as on_a,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{b.port}", timeout=20) as on_b,
    ):
        for http in (on_a, on_b):
            ready = (await http.get("/ready")).json()
            assert ready["checks"]["cache"] == "ok", ready

        # Chat fan-out: said on one process, received by a socket on the other.
        ws_a = await join(a.url(event["id"]), viewer)
        ws_b = await join(b.url(event["id"]), admin)
        sent = await ws_a.say("from A")
        await ws_b.message(sent["id"])
        sent = await ws_b.say("from B")
        await ws_a.message(sent["id"])
        await ws_a.next("presence", viewers=2)

        # A rate limit counts the hits on both processes.
        codes = [
            await _chat(on_a if n % 2 else on_b, event["id"], talker, f"n{n}")
            for n in range(CHAT_LIMIT)
        ]
        assert codes == [201] * CHAT_LIMIT
        assert await _chat(on_a, event["id"], talker, "one too many") == 429
        assert await _chat(on_b, event["id"], talker, "one too many") == 429

        # A logout on A is refused at once on B (B had the principal cached).
        for http in (on_a, on_b):
            for _ in range(2):
                me = await http.get("/api/auth/me", headers=leaver.headers)
                assert me.status_code == 200, me.text
        out = await on_a.post("/api/auth/logout", headers=leaver.headers)
        assert out.status_code == 204, out.text
        me = await on_b.get("/api/auth/me", headers=leaver.headers)
        assert me.status_code == 401, me.text
        assert me.json()["error"]["code"] == "session_revoked"

        # The media server's on_publish reaches A; B serves the event as live.
        key = await on_b.post("/api/api-keys", json={"name": "media"}, headers=admin.headers)
        assert key.status_code == 201, key.text
        started = await on_b.post(f"/api/events/{event['id']}/start", headers=owner.headers)
        assert started.status_code == 200, started.text
        published = await on_a.post(
            "/api/streaming/hooks/srs",
            content=payload(
                "srs",
                "on_publish.json",
                client_id="c1",
                playback_id=event["playback_id"],
                stream_key=event["ingest"]["stream_key"],
            ),
            headers={"X-API-Key": key.json()["key"], "content-type": "application/json"},
        )
        assert published.status_code == 200, published.text
        seen = await on_b.get(f"/api/events/{event['id']}", headers=owner.headers)
        assert seen.json()["status"] == "live", seen.text
        wrong = await on_b.post(
            "/api/streaming/hooks/srs",
            content=payload(
                "srs",
                "on_publish.json",
                client_id="c2",
                playback_id=event["playback_id"],
                stream_key="not-the-key",
            ),
            headers={"X-API-Key": key.json()["key"], "content-type": "application/json"},
        )
        assert wrong.status_code == 403, wrong.text
