"""Webhook deliveries and analytics minutes that keep flowing while a test breaks a dependency
(beside tests/faults/traffic.ChatTraffic), and their reconciliation afterwards:

- webhooks: an admin creates users through the API (`user.created`, to a receiver on loopback);
  every user the API acknowledged (201) is delivered, under one delivery id (`webhook-id`):
  a repeat is a retry with the same id, which the receiver deduplicates;
- analytics: player heartbeats; the watch time rolled up into `analytics_minutes` equals the
  sum of the batches the API acknowledged (202), none lost, none counted twice.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import httpx

from bigfootlive.composition import AppState
from bigfootlive.events import access, lifecycle
from tests.fixtures.factories import Account

# Settings for an app whose jobs run in it and reach a receiver on loopback while a fault lasts
# a few seconds: retries outlast it (8 retries, back-off up to 2 s), the relay sends soon.
FLOW_SETTINGS: dict[str, Any] = {
    "jobs_inprocess_worker": True,
    "jobs_min_backoff_ms": 200,
    "jobs_max_backoff_ms": 2000,
    "jobs_outbox_relay_after_seconds": 0.5,
    "jobs_outbox_relay_interval_seconds": 0.2,
    "webhook_allow_private_networks": True,
    "webhook_timeout_seconds": 5,
    "analytics_flush_seconds": 0.3,
    "analytics_beacon_ip_rate_limit": "100000/minute",
}


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that records each POST by its `webhook-id`."""

    def __init__(self) -> None:
        self.deliveries: dict[str, list[dict[str, Any]]] = defaultdict(list)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.deliveries[self.headers["webhook-id"]].append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def users(self) -> dict[str, set[str]]:
        """user id -> the delivery ids its user.created arrived under (deduplicated)."""
        out: dict[str, set[str]] = defaultdict(set)
        for webhook_id, bodies in list(self.deliveries.items()):
            for body in bodies:
                out[body["data"]["user_id"]].add(webhook_id)
        return out


@dataclass
class Flow:
    """Requests sent in a loop by `workers` tasks; each answer is acknowledged, refused (503,
    checked by the test) or wrong (anything else, or no answer within 15 s)."""

    client: httpx.AsyncClient
    account: Account
    workers: int = 1
    acknowledged: dict[str, Any] = field(default_factory=dict)
    refused: list[httpx.Response] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _numbers: itertools.count[int] = field(default_factory=itertools.count)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def send(self, n: int) -> tuple[httpx.Response, int, Callable[[], None]]:
        """Send request `n`: its answer, the status that acknowledges it, and how to note it."""
        raise NotImplementedError

    async def _worker(self) -> None:
        while not self._stop.is_set():
            n = next(self._numbers)
            try:
                response, ok, note = await asyncio.wait_for(self.send(n), timeout=15)
            except TimeoutError:
                self.wrong.append(f"{type(self).__name__} {n}: no answer within 15 s")
                continue
            if response.status_code == ok:
                note()
            elif response.status_code == 503:
                self.refused.append(response)
                await asyncio.sleep(0.05)
            else:
                self.wrong.append(f"{n}: {response.status_code} {response.text[:300]}")
            await asyncio.sleep(0.02)

    async def wait_for_progress(self, more: int = 3, within: float = 60.0) -> None:
        target = len(self.acknowledged) + more
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while len(self.acknowledged) < target:
            assert loop.time() < deadline, f"{type(self).__name__}: no progress {self.wrong[-3:]}"
            await asyncio.sleep(0.05)


@dataclass
class WebhookTraffic(Flow):
    """An admin creates users (no password: no hashing); acknowledged: user id -> email."""

    async def send(self, n: int) -> tuple[httpx.Response, int, Callable[[], None]]:
        email = f"hooked-{n}@example.test"
        response = await self.client.post(
            "/api/tenant/users",
            json={"email": email, "display_name": f"Hooked {n}"},
            headers=self.account.headers,
        )

        def note() -> None:
            self.acknowledged[response.json()["id"]] = email

        return response, 201, note


@dataclass
class BeaconTraffic(Flow):
    """A new viewer per batch (the per-viewer rate limit stays out of the way) sends one
    heartbeat; acknowledged: viewer -> watched ms."""

    event_id: str = ""

    async def send(self, n: int) -> tuple[httpx.Response, int, Callable[[], None]]:
        viewer, watched = f"viewer-{n:06d}", 1000 + n % 7
        response = await self.client.post(
            f"/api/analytics/events/{self.event_id}/beacons",
            json={"viewer_id": viewer, "beacons": [{"type": "heartbeat", "watched_ms": watched}]},
        )

        def note() -> None:
            self.acknowledged[viewer] = watched

        return response, 202, note


async def register_receiver(
    client: httpx.AsyncClient, admin: Account, receiver: WebhookReceiver
) -> None:
    response = await client.post(
        "/api/webhooks/endpoints",
        json={"url": receiver.url, "event_types": ["user.created"]},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text


async def _until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        assert loop.time() < deadline, what
        await asyncio.sleep(0.2)


async def live_event(client: httpx.AsyncClient, state: AppState, streamer: Account) -> str:
    """A public event on air (its publish callback simulated at the service)."""
    created = await client.post(
        "/api/events", json={"title": "Beacons", "visibility": "public"}, headers=streamer.headers
    )
    assert created.status_code == 201, created.text
    event_id = created.json()["id"]
    started = await client.post(f"/api/events/{event_id}/start", headers=streamer.headers)
    assert started.status_code == 200, started.text
    async with state.db.transaction() as session:
        event = await access.get_event(session, streamer.tenant.id, uuid.UUID(event_id))
        await lifecycle.publisher_connected(state, session, event, "encoder-1")
    return str(event_id)


@dataclass
class Deliveries:
    """Webhook and beacon traffic together, for a fault test: start, stop, reconcile."""

    state: AppState
    receiver: WebhookReceiver
    webhooks: WebhookTraffic
    beacons: BeaconTraffic

    @property
    def flows(self) -> tuple[Flow, ...]:
        return (self.webhooks, self.beacons)

    @property
    def refused(self) -> list[httpx.Response]:
        return [r for flow in self.flows for r in flow.refused]

    @property
    def wrong(self) -> list[str]:
        return [w for flow in self.flows for w in flow.wrong]

    def start(self) -> None:
        for flow in self.flows:
            flow.start()

    async def stop(self) -> None:
        for flow in self.flows:
            await flow.stop()

    async def wait_for_progress(self) -> None:
        for flow in self.flows:
            await flow.wait_for_progress()

    async def drained(self) -> bool:
        """Nothing buffered for a roll-up, nothing waiting in the job queues."""
        if self.state.beacons.pending:
            return False
        depth = await self.state.jobs.depth()
        return not any(c["queued"] or c["delayed"] for c in depth.values())

    async def reconcile(self, dsn: str) -> None:
        await reconcile_webhooks(dsn, self.webhooks, self.receiver)
        await reconcile_beacons(dsn, self.beacons, self.drained)


async def start_deliveries(
    client: httpx.AsyncClient, state: AppState, streamer: Account, admin: Account
) -> Deliveries:
    receiver = WebhookReceiver()
    await register_receiver(client, admin, receiver)
    event_id = await live_event(client, state, streamer)
    return Deliveries(
        state,
        receiver,
        WebhookTraffic(client, admin),
        BeaconTraffic(client, streamer, event_id=event_id),
    )


async def reconcile_webhooks(
    dsn: str, traffic: WebhookTraffic, receiver: WebhookReceiver, within: float = 60.0
) -> None:
    """Every acknowledged user's user.created arrives, under the delivery id its row holds, and
    under no other; no user is delivered under two ids."""

    async def all_delivered() -> bool:
        return set(traffic.acknowledged) <= set(receiver.users())

    await _until(all_delivered, within, "acknowledged webhook events never delivered")
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT payload->'data'->>'user_id' AS user_id, message_id, status"
            " FROM webhook_deliveries WHERE tenant_id = $1::uuid",
            str(traffic.account.tenant.id),
        )
    finally:
        await conn.close()
    stored: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in rows:
        stored[row["user_id"]].append((row["message_id"], row["status"]))
    doubled = {user: ids for user, ids in receiver.users().items() if len(ids) > 1}
    assert not doubled, f"events delivered under two delivery ids: {doubled}"
    rows_doubled = {user: found for user, found in stored.items() if len(found) > 1}
    assert not rows_doubled, f"one event, two deliveries: {rows_doubled}"
    delivered = receiver.users()
    for user in traffic.acknowledged:
        [(message_id, status)] = stored[user]
        assert delivered[user] == {message_id}, (user, delivered[user], message_id)
        assert status == "succeeded", (user, status)


async def reconcile_beacons(
    dsn: str, traffic: BeaconTraffic, drained: Callable[[], Awaitable[bool]], within: float = 60
) -> None:
    """The heartbeats and watch time in `analytics_minutes` are those acknowledged: once the
    buffer and the job queue are drained, neither more (counted twice) nor less (lost)."""
    expected = (len(traffic.acknowledged), sum(traffic.acknowledged.values()))

    async def totals() -> tuple[int, int]:
        conn = await asyncpg.connect(dsn)
        try:
            row = await conn.fetchrow(
                "SELECT coalesce(sum(heartbeats), 0) AS beats, coalesce(sum(watch_ms), 0) AS ms"
                " FROM analytics_minutes WHERE event_id = $1::uuid",
                traffic.event_id,
            )
        finally:
            await conn.close()
        assert row is not None
        return int(row["beats"]), int(row["ms"])

    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while (got := await totals()) < expected or not await drained():
        assert got <= expected, f"analytics (heartbeats, watch ms) {got} > acknowledged {expected}"
        assert loop.time() < deadline, f"analytics lost: {got} < acknowledged {expected}"
        await asyncio.sleep(0.2)
    assert got == expected, f"analytics (heartbeats, watch ms) {got}, acknowledged {expected}"
