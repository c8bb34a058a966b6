"""Real server processes (uvicorn subprocesses): fan-out across processes sharing Redis, a
kill -9 right after an ack, and a clean 4503 on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bigfootlive.config import Settings
from tests.fixtures import services
from tests.fixtures.processes import spawner
from tests.realtime.conftest import create_event, join


class ServerProcess:
    def __init__(self, settings: Settings, workdir: Path) -> None:
        self.settings = settings
        self.workdir = workdir
        self.port = services.free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        s = self.settings
        env = {
            **os.environ,
            "NODE_ENV": "test",
            "DATABASE_URL": s.database_url,
            "REDIS_URL": s.redis_url or "",
            "REDIS_KEY_PREFIX": s.redis_key_prefix,
            "JWT_SECRET": s.jwt_secret.get_secret_value(),
            "AUTO_MIGRATE": "false",
            "LOG_LEVEL": "WARNING",
            "PRESENCE_HEARTBEAT_SECONDS": "0.3",
            "WS_BATCH_WINDOW_MS": "5",
            "CHAT_RATE_LIMIT": "1000/second",
            "MAIL_OUTBOX_DIR": str(self.workdir / "outbox"),
        }
        if not s.redis_url:
            env.pop("REDIS_URL")
        return env

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("bigfootlive")),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=self.env(),
            cwd=self.workdir,
        )
        deadline = time.monotonic() + 120  # imports alone take ~10 s on a busy 2-core box
        # One client for the whole wait: a new one per poll (httpx.get) costs ~25 ms of CPU
        # (its SSL context), a quarter of a core at 10 polls a second while the server starts.
        with httpx.Client(timeout=0.5) as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}")
                try:
                    if http.get(f"http://127.0.0.1:{self.port}/health").status_code < 500:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def url(self, event_id: object) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/events/{event_id}"

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            if sig == signal.SIGKILL:
                self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


processes = spawner(ServerProcess)


async def test_two_processes_on_one_redis_share_viewers_and_heal_when_one_dies(
    backend, client, world, processes
):
    if backend != "postgres":
        pytest.skip("cross-process fan-out needs Redis")
    a, b = await asyncio.gather(asyncio.to_thread(processes), asyncio.to_thread(processes))
    event = await create_event(client, world["owner"])
    on_a = await join(a.url(event["id"]), world["viewer"])
    await join(a.url(event["id"]))
    on_b = await join(b.url(event["id"]), world["viewer2"])
    sent = await on_a.say("from A")
    await on_b.message(sent["id"])
    sent = await on_b.say("from B")
    await on_a.message(sent["id"])
    # one total across both processes
    await on_a.next("presence", viewers=3)
    await on_b.next("presence", viewers=3)

    a.kill(signal.SIGKILL)
    started = time.monotonic()
    await on_b.next("presence", viewers=1, within=3.0)
    assert time.monotonic() - started < 3.0  # heartbeat 0.3 s, a field expires after 3 beats


async def test_acknowledged_message_survives_kill_9_and_counts_heal(
    backend, client, world, processes
):
    a = await asyncio.to_thread(processes)
    event = await create_event(client, world["owner"])
    viewer = await join(a.url(event["id"]), world["viewer"])
    sent = await viewer.say("remember me")
    a.kill(signal.SIGKILL)  # right after the ack

    restarted = await asyncio.to_thread(processes)
    history = await client.get(f"/api/events/{event['id']}/chat")
    assert [m["id"] for m in history.json()["items"]] == [sent["id"]]
    back = await join(restarted.url(event["id"]), world["viewer"])
    await back.send(type="resume", last_id=sent["id"])
    assert (await back.next("history"))["messages"] == []
    if backend == "postgres":
        # The dead process's viewer vanished from the shared count within the heartbeat window.
        await back.next("presence", viewers=1, within=3.0)

    # A stopping server tells its viewers so with its own close code.
    restarted.kill(signal.SIGTERM)
    assert await back.closed_with() == 4503
