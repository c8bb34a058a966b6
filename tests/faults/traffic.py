"""Chat traffic and committed jobs that keep flowing while a test breaks a dependency, and the
reconciliation of what the API acknowledged (or the transaction committed) against what the
database holds and the jobs did. Webhook deliveries and beacons: tests/faults/deliveries.py."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from sqlalchemy import func, select

from bigfootlive.composition import AppState
from bigfootlive.jobs import enqueue_after_commit
from bigfootlive.models import JobOutbox
from tests.fixtures.factories import Account
from tests.jobs import probe_tasks as probes


@dataclass
class ChatTraffic:
    client: httpx.AsyncClient
    account: Account
    event_id: str
    workers: int = 3
    label: str = "m"  # bodies are f"{label}-{n}": distinct labels for traffics on one event
    # An API process that may die under the traffic: a dropped connection is not an answer
    # (the message may or may not be stored, never twice), noted in `unanswered`.
    tolerate_disconnects: bool = False
    unanswered: list[str] = field(default_factory=list)
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
            body = f"{self.label}-{next(self._numbers)}"
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
            except httpx.TransportError as exc:
                if not self.tolerate_disconnects:
                    raise
                self.unanswered.append(f"{body}: {type(exc).__name__}")
                await asyncio.sleep(0.05)
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


class Producer:
    """Commits one job per transaction, as fast as it can; `acknowledged`: the committed ones."""

    def __init__(self, state: AppState, run: str) -> None:
        self.state, self.run = state, run
        self.acknowledged: list[str] = []
        self.failed = 0
        self._numbers = itertools.count()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._produce())

    async def stop(self) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    async def _produce(self) -> None:
        while not self._stop.is_set():
            label = str(next(self._numbers))
            try:
                async with asyncio.timeout(15):
                    async with self.state.db.transaction() as session:
                        enqueue_after_commit(session, probes.record_once, run=self.run, label=label)
            except Exception:  # the database is down: not acknowledged
                self.failed += 1
                await asyncio.sleep(0.05)
                continue
            self.acknowledged.append(label)
            await asyncio.sleep(0.01)

    async def progress(self, more: int = 10, within: float = 60.0) -> None:
        target = len(self.acknowledged) + more
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while len(self.acknowledged) < target:
            assert loop.time() < deadline, "jobs are no longer committed"
            await asyncio.sleep(0.05)


async def outbox_rows(state: AppState) -> int:
    async with state.db.transaction() as session:
        return int(
            (await session.execute(select(func.count()).select_from(JobOutbox))).scalar_one()
        )


async def jobs_ran(run: str, labels: list[str], within: float = 90.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while missing := set(labels) - {r["label"] for r in probes.RUNS[run] if r["effect"]}:
        assert loop.time() < deadline, f"acknowledged jobs never ran: {sorted(missing, key=int)}"
        await asyncio.sleep(0.1)


def effects_once(run: str, acknowledged: list[str]) -> None:
    """Delivery is at least once (a send whose outbox delete failed is sent again by the relay,
    a message whose ack was lost is redelivered); the effect of each acknowledged job happens
    exactly once."""
    effects = [r["label"] for r in probes.RUNS[run] if r["effect"]]
    doubled = sorted({label for label in effects if effects.count(label) > 1}, key=int)
    assert not doubled, f"{len(doubled)} job effects happened twice: {doubled[:10]}"
    lost = set(acknowledged) - set(effects)
    assert not lost, f"acknowledged jobs without their effect: {sorted(lost, key=int)[:10]}"
