"""The embedded quick start: CLI administration, then `bigfootlive serve` on a socket.

The administration commands run in this process (typer's runner: the same argument parsing,
environment, stdin, output and exit codes, without a second of interpreter start-up and
imports for each command); one real `bigfootlive` process per kind of command is kept in the
quick start itself (`tenant create` migrating a new SQLite file, then `serve`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.fixtures.cli import run_cli
from tests.fixtures.services import free_port

BIN = Path(sys.executable).parent / "bigfootlive"
PASSWORD = "plausible-tundra-velvet-42"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/var/bigfootlive.db",
        MAIL_OUTBOX_DIR=str(tmp_path / "outbox"),
        JWT_SECRET="cli-test-secret-" + "y" * 60,
        **extra,
    )
    return env


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., str]:
    """`bigfootlive ARGS` in this process, with the environment _env gives a real process."""
    env = _env(tmp_path)

    def invoke(args: list[str], stdin: str | None = None, exit_code: int = 0) -> str:
        return run_cli(args, env, cwd=tmp_path, stdin=stdin, exit_code=exit_code)

    return invoke


def _run(args: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(BIN), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_cli_creates_tenant_and_user_and_refuses_duplicates(cli):
    assert "tenant acme created" in cli(["tenant", "create", "--slug", "acme", "--name", "Acme"])
    out = cli(
        [
            "user",
            "create",
            "--tenant",
            "acme",
            "--email",
            "boss@acme.com",
            "--name",
            "Boss",
            "--role",
            "admin",
            "--password-stdin",
        ],
        stdin=PASSWORD + "\n",
    )
    assert "user boss@acme.com created" in out
    again = cli(["tenant", "create", "--slug", "acme", "--name", "Acme"], exit_code=2)
    assert "slug_taken" in again


def test_serve_migrates_sqlite_on_first_start_and_logs_json_with_request_ids(tmp_path, cli):
    # the managed media server (on by default where nginx-rtmp is installed) on ports of its own
    env = _env(
        tmp_path,
        RTMP_PORT=str(free_port()),
        MEDIA_HTTP_PORT=str(free_port()),
        MEDIA_RUNTIME_DIR=str(tmp_path / "media-server"),
        RECORDINGS_DIR=str(tmp_path / "media"),
    )
    _run(["tenant", "create", "--slug", "acme", "--name", "Acme"], env)  # a real process
    cli(
        [
            "user",
            "create",
            "--tenant",
            "acme",
            "--email",
            "ann@acme.com",
            "--name",
            "Ann",
            "--password-stdin",
        ],
        stdin=PASSWORD + "\n",
    )
    port = free_port()
    server = subprocess.Popen(
        [str(BIN), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120  # imports alone take 15 s+ on a busy 2-core box
        with httpx.Client(timeout=1) as http:  # one client: a new one per poll costs ~25 ms CPU
            while True:
                try:
                    if http.get(f"{base}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        login = httpx.post(
            f"{base}/api/auth/login",
            json={"tenant": "acme", "email": "ann@acme.com", "password": PASSWORD},
            headers={"X-Request-ID": "quickstart-1"},
        )
        assert login.status_code == 200
        token = login.json()["access_token"]
        me = httpx.get(f"{base}/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["email"] == "ann@acme.com"
        assert httpx.get(f"{base}/ready").status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    # uvicorn re-raises the signal once it has shut down cleanly.
    assert server.returncode in (0, -signal.SIGTERM)
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    login_lines = [entry for entry in lines if entry.get("route") == "/api/auth/login"]
    assert login_lines
    assert login_lines[0]["request_id"] == "quickstart-1"
    assert login_lines[0]["status"] == 200
    assert any(entry.get("event") == "stopped" for entry in lines)  # lifespan ran to the end
    assert PASSWORD not in output
    assert token not in output


def test_cli_deactivates_and_reactivates_a_tenant(cli):
    cli(["tenant", "create", "--slug", "acme", "--name", "Acme"])
    assert "tenant acme deactivated" in cli(["tenant", "deactivate", "acme"])
    assert "(no change)" in cli(["tenant", "deactivate", "acme"])
    assert "tenant acme activated" in cli(["tenant", "activate", "acme"])
    missing = cli(["tenant", "deactivate", "nope"], exit_code=2)
    assert "tenant_not_found" in missing


def test_user_create_asks_twice_and_says_why_a_password_is_refused(cli, monkeypatch):
    cli(["tenant", "create", "--slug", "acme", "--name", "Acme"])
    typed = iter([PASSWORD, PASSWORD + "x"])  # a typo the second time
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(typed))
    user = ["user", "create", "--tenant", "acme", "--email", "ann@acme.com", "--name", "Ann"]
    differ = cli(user, exit_code=2)
    assert "the two passwords differ; nothing was created" in differ
    weak = cli([*user, "--password-stdin"], stdin="password\n", exit_code=2)
    assert "error: weak_password: The password does not meet the policy" in weak
    assert "(problems: must be at least 12 characters; is too common)" in weak  # not a repr
    typed = iter([PASSWORD, PASSWORD])
    assert "user ann@acme.com created" in cli(user)
