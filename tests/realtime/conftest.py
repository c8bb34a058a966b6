"""A real server on a real socket: uvicorn serving the test's app in the test's event loop,
and real WebSocket clients (the `websockets` library)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
import websockets
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection

from bigfootlive.app import Loop
from bigfootlive.authz.roles import Role
from bigfootlive.serving import uvicorn_options
from tests.fixtures import services
from tests.fixtures.factories import Account

REALTIME_SETTINGS: dict[str, Any] = {
    "ws_batch_window_ms": 5,
    "presence_heartbeat_seconds": 0.3,
    "ws_auth_timeout_seconds": 1.0,
    "chat_rate_limit": "1000/second",
    "ws_send_queue_size": 8,
}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return dict(REALTIME_SETTINGS)


@pytest.fixture
def loops(loops: frozenset[Loop]) -> frozenset[Loop]:
    """The hub's presence heartbeat and reaction counts run beside every test here."""
    return loops | {Loop.REALTIME}


@dataclass
class LiveServer:
    port: int

    def url(self, event_id: object) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/events/{event_id}"


@pytest.fixture
async def live_server(app: FastAPI) -> AsyncIterator[LiveServer]:
    port = services.free_port()
    config = uvicorn.Config(
        app, **uvicorn_options(host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    yield LiveServer(port)
    server.should_exit = True
    await asyncio.wait_for(task, 10)


class Client:
    """A test viewer: collects every server message; helpers wait for one of a type."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []
        self._index = 0

    async def send(self, **message: Any) -> None:
        await self.ws.send(json.dumps(message, default=str))

    async def next(self, type_: str, within: float = 5.0, **match: Any) -> dict[str, Any]:
        """The next message of `type_` (matching `match`) not consumed yet."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            while self._index < len(self.seen):
                message = self.seen[self._index]
                self._index += 1
                if message["type"] == type_ and all(message.get(k) == v for k, v in match.items()):
                    return message
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"no {type_} message within {within}s; saw {self.seen}")
            frame = await asyncio.wait_for(self.ws.recv(), remaining)
            self.seen.extend(json.loads(frame))

    async def message(self, message_id: str, within: float = 5.0) -> dict[str, Any]:
        """Wait for the broadcast of one chat message."""
        while True:
            got = await self.next("message", within)
            if got["message"]["id"] == message_id:
                return got["message"]

    async def request(self, **message: Any) -> dict[str, Any]:
        """Send a command with a ref; return its ack, or its error frame."""
        ref = message.setdefault("ref", f"r{id(message)}")
        await self.send(**message)
        deadline = asyncio.get_running_loop().time() + 5
        while True:
            for m in self.seen[self._index :]:
                if m.get("ref") == ref and m["type"] in ("ack", "error"):
                    self.seen.remove(m)
                    return m
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"no reply to {message}; saw {self.seen}")
            frame = await asyncio.wait_for(self.ws.recv(), remaining)
            self.seen.extend(json.loads(frame))

    async def say(self, body: str, **extra: Any) -> dict[str, Any]:
        reply = await self.request(type="send", body=body, **extra)
        assert reply["type"] == "ack", reply
        return reply["message"]

    async def closed_with(self, within: float = 5.0) -> int:
        received = None
        try:
            async with asyncio.timeout(within):
                while True:
                    frame = await self.ws.recv()
                    self.seen.extend(json.loads(frame))
        except websockets.ConnectionClosed as closed:
            received = closed.rcvd
        if received is None:
            raise AssertionError("closed without a close frame")
        return received.code

    async def close(self) -> None:
        await self.ws.close()


def subprotocols(account: Account | None) -> list[str]:
    offered = ["bigfootlive.v1"]
    if account is not None:
        offered.append(f"bearer.{account.access_token}")
    return offered


_OPEN: list[Client] = []


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    while _OPEN:
        client = _OPEN.pop()
        client.ws.transport.abort()


async def connect(url: str, account: Account | None = None, **kwargs: Any) -> Client:
    kwargs.setdefault("subprotocols", subprotocols(account))
    ws = await websockets.connect(url, **kwargs)
    client = Client(ws)
    _OPEN.append(client)
    return client


async def join(url: str, account: Account | None = None, **kwargs: Any) -> Client:
    client = await connect(url, account, **kwargs)
    await client.next("welcome")
    return client


@pytest.fixture
async def world(factory):
    acme = await factory.tenant()
    other = await factory.tenant()
    return {
        "tenant": acme,
        "owner": await factory.user(acme, role=Role.STREAMER),
        "viewer": await factory.user(acme, role=Role.VIEWER),
        "viewer2": await factory.user(acme, role=Role.VIEWER),
        "moderator": await factory.user(acme, role=Role.MODERATOR),
        "admin": await factory.user(acme, role=Role.ADMIN),
        "outsider": await factory.user(other, role=Role.VIEWER),
    }


async def create_event(client, account, **fields) -> dict[str, Any]:
    response = await client.post(
        "/api/events", json={"title": "Town hall", **fields}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    return response.json()
