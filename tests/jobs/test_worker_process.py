"""`bigfootlive worker` processes on a real broker: a worker killed mid-job loses nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bigfootlive.composition import AppState
from bigfootlive.config import Settings
from tests.jobs import probe_tasks as probes

ROOT = Path(__file__).resolve().parents[2]


def worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBS_", "BROKER_"))}
    env.update(
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url or "",
        REDIS_KEY_PREFIX=settings.redis_key_prefix,
        BROKER_URL=settings.broker_url or "",
        JWT_SECRET=settings.jwt_secret.get_secret_value(),
        AUTO_MIGRATE="false",
        JOBS_QUEUE_PREFIX=settings.jobs_queue_prefix,
        JOBS_EXTRA_TASK_MODULES="tests.jobs.probe_tasks",
        JOBS_REDIS_HEARTBEAT_TIMEOUT_MS="1500",
        JOBS_REDIS_MAINTENANCE_CHANCE="1000000",
        LOG_LEVEL="WARNING",
        NODE_ENV="test",
    )
    return env


def start_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bigfootlive.cli", "worker", "--threads", "2", "--no-cron"],
        cwd=ROOT,
        env=worker_env(settings),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


async def wait_for_line(path: Path, text: str, count: int, within: float) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        if (await asyncio.to_thread(read, path)).count(text) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{text!r} x{count} not in {path}: {read(path)}")


@pytest.mark.timeout(400)
async def test_job_of_a_worker_killed_mid_run_runs_again_on_another_worker(
    backend: str, settings: Settings, state: AppState, tmp_path: Path
):
    if backend == "sqlite":
        pytest.skip("the in-process broker lives and dies with its process")
    await state.jobs.stop_worker()  # only the worker processes below may take the job
    probe_log = tmp_path / "probe.log"
    worker_log = tmp_path / "worker.log"
    first = start_worker(settings, worker_log)
    second = None
    try:
        await state.jobs.enqueue(probes.file_probe, path=str(probe_log), seconds=600)
        await wait_for_line(probe_log, "start", 1, within=150)  # a loaded CI box starts slowly
        first.send_signal(signal.SIGKILL)  # no chance to ack, nack or requeue
        first.wait(timeout=10)
        assert "done" not in probe_log.read_text()

        second = start_worker(settings, worker_log)
        await wait_for_line(probe_log, "done", 1, within=150)
        lines = probe_log.read_text().splitlines()
        assert lines.count("done") == 1
        starts = [line for line in lines if line.startswith("start")]
        assert len(starts) == 2
        assert starts[0] == starts[1]  # the same message, run again
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
