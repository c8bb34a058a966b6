"""`bigfootlive serve --workers 2` gives its workers one directory of password-hashing slots
(kit/host_slots: together they hash at most one password per core at once) and removes it
when it stops; one worker needs none."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.fixtures.services import free_port

BIN = Path(sys.executable).parent / "bigfootlive"
ROOT = Path(__file__).resolve().parents[1]


def _serve(tmp_path: Path, workers: int) -> tuple[set[int], set[str | None]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "PASSWORD_"))}
    env.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/bigfootlive.db",
        AUTO_MIGRATE="false",
        MEDIA_SERVER_MODE="none",
        PYTHONPATH=str(ROOT),
        TMPDIR=str(tmp_path),
    )
    port = free_port()
    server = subprocess.Popen(
        [str(BIN), "serve", "--app=tests.fixtures.env_app:app", f"--port={port}",
         f"--workers={workers}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    pids: set[int] = set()
    dirs: set[str | None] = set()
    try:
        deadline = time.monotonic() + 120
        while len(pids) < workers and time.monotonic() < deadline:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/", timeout=2).json()
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            pids.add(answer["pid"])
            dirs.add(answer["slots_dir"])
            if answer["slots_dir"] is not None:
                assert Path(answer["slots_dir"]).is_dir()  # there while the workers run
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
    return pids, dirs


def test_workers_share_one_slots_directory_removed_at_exit(tmp_path: Path) -> None:
    pids, dirs = _serve(tmp_path, workers=2)
    assert len(pids) == 2, "both workers answered"
    (slots_dir,) = dirs
    assert slots_dir is not None
    assert slots_dir.startswith(str(tmp_path))
    assert not Path(slots_dir).exists()


def test_one_worker_gets_no_slots_directory(tmp_path: Path) -> None:
    assert _serve(tmp_path, workers=1)[1] == {None}
