"""Chat traffic that keeps flowing while a test breaks a dependency, and the reconciliation
of what the API acknowledged against what the database holds."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from tests.fixtures.factories import Account


@dataclass
class ChatTraffic:
    client: httpx.AsyncClient
    account: Account
    event_id: str
    workers: int = 3
    acknowledged: dict[str, str] = field(default_factory=dict)  # body -> message id
    refused: list[httpx.Response] = field(default_factory=list)  # 503s, checked by the test
    wrong: list[str] = field(default_factory=list)  # anything else: hangs, 500s, bad bodies
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _numbers: itertools.count[int] = field(default_factory=itertools.count)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    @property
    def sent(self) -> int:
        return len(self.acknowledged)

    async def _worker(self) -> None:
        while not self._stop.is_set():
            body = f"m-{next(self._numbers)}"
            try:
                response = await asyncio.wait_for(
                    self.client.post(
                        f"/api/events/{self.event_id}/chat",
                        json={"body": body},
                        headers=self.account.headers,
                    ),
                    timeout=15,
                )
            except TimeoutError:
                self.wrong.append(f"{body}: no answer within 15 s")
                continue
            if response.status_code == 201:
                self.acknowledged[body] = response.json()["id"]
            elif response.status_code == 503:
                self.refused.append(response)
                await asyncio.sleep(0.05)  # a client honouring Retry-After, shortened
            else:
                self.wrong.append(f"{body}: {response.status_code} {response.text[:300]}")

    async def wait_for_progress(self, more: int = 5, within: float = 60.0) -> None:
        """Until `more` further messages are acknowledged (the app has recovered)."""
        target = self.sent + more
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self.sent < target:
            assert loop.time() < deadline, f"no recovery: {self.wrong[-3:]}"
            await asyncio.sleep(0.05)


def check_refusal(response: httpx.Response) -> dict[str, Any]:
    """A 503 as clients need it: Retry-After and the JSON error body."""
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    error: dict[str, Any] = response.json()["error"]
    assert error["code"]
    assert error["message"]
    return error


async def reconcile(dsn: str, traffic: ChatTraffic) -> None:
    """Every acknowledged message is stored exactly once, under the id the API answered with;
    no body is stored twice (a refused one may or may not have been stored: never twice)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT id::text AS id, body FROM chat_messages WHERE event_id = $1::uuid",
            traffic.event_id,
        )
    finally:
        await conn.close()
    stored: dict[str, list[str]] = {}
    for row in rows:
        stored.setdefault(row["body"], []).append(row["id"])
    doubled = {body: ids for body, ids in stored.items() if len(ids) > 1}
    assert not doubled, f"messages stored twice: {doubled}"
    lost = {b: i for b, i in traffic.acknowledged.items() if stored.get(b) != [i]}
    assert not lost, f"acknowledged messages lost: {lost}"
