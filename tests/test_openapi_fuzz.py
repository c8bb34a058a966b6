"""Schema-driven fuzzing: schemathesis against the real server's /openapi.json.

A real uvicorn server runs on a loopback port; schemathesis generates requests for every
operation, authenticated as a tenant admin, and checks that no response is a 5xx and every
documented response matches its schema. Bounded: every boundary and invalid value the schema
defines (the coverage phase, most of the run), a few random examples per operation and a fixed
seed, so a run is repeatable (~3,400 requests, about a minute on an idle 2-core machine).

It runs on PostgreSQL + Redis only: PostgreSQL is the stricter backend (it refuses text SQLite
stores, e.g. NUL characters, and enforces column lengths), and one backend keeps the suite fast.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bigfootlive.authz.roles import Role
from bigfootlive.composition import AppState
from bigfootlive.config import Settings
from bigfootlive.identity import accounts
from bigfootlive.tenants import service as tenants
from bigfootlive.tenants.schemas import TenantSettings
from tests.fixtures import services
from tests.fixtures.factories import PASSWORD

MAX_EXAMPLES = 5
SEED = 20261125
CHECKS = "not_a_server_error,response_schema_conformance"
# Operations that end the caller's own session get their own run with a second session, so
# they cannot log out the main run half-way and leave later operations answering only 401.
SESSION_ENDING = r"^/api/auth/(logout|sessions/)"


@dataclass
class Server:
    base_url: str
    log: Path


def _schemathesis() -> str:
    binary = Path(sys.executable).with_name("schemathesis")
    found = str(binary) if binary.exists() else shutil.which("schemathesis")
    services.require(found is not None, "the schemathesis CLI")
    assert found is not None
    return found


async def _seed(settings: Settings) -> None:
    state = AppState.build(settings)
    try:
        async with state.db.transaction() as session:
            tenant = await tenants.create_tenant(
                session,
                slug="fuzz",
                name="Fuzz",
                settings=TenantSettings(allow_self_registration=True),
            )
            await accounts.create_account(
                state,
                session,
                tenant=tenant,
                email="admin@fuzz.example",
                display_name="Fuzz Admin",
                role=Role.ADMIN,
                password=PASSWORD,
                email_verified=True,
            )
    finally:
        await state.close()


@pytest.fixture
def server(
    tmp_path: Path, postgres_url: str, postgres_emptying: str, redis_url: str
) -> Iterator[Server]:
    """The server on this worker's PostgreSQL database (migrated once per worker, emptied
    afterwards as after any test) and a Redis key prefix of its own."""
    prefix = f"fuzz:{uuid.uuid4().hex[:10]}:"
    env = {
        "NODE_ENV": "test",
        "JWT_SECRET": "fuzz-secret-" + uuid.uuid4().hex * 2,
        "LOG_LEVEL": "WARNING",
        "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
        "MEDIA_SERVER_MODE": "none",  # the API is fuzzed, not nginx (tests/e2e run that)
        # Generous limits: the fuzzer should reach the logic behind the rate limiter.
        "LOGIN_RATE_LIMIT": "100000/minute",
        "REGISTER_RATE_LIMIT": "100000/minute",
        "RESET_RATE_LIMIT": "100000/minute",
        "AUTO_MIGRATE": "false",
        # Cheap hashing, as in every other test (tests/conftest.base_settings): every sign-in
        # the fuzzer sends verifies a password (a dummy hash for unknown accounts), and the
        # production parameters are tests/identity/test_passwords.py's.
        "ARGON2_MEMORY_KIB": "1024",
        "ARGON2_TIME_COST": "1",
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
    }
    try:
        settings = Settings(_env_file=None, **{k.lower(): v for k, v in env.items()})
        asyncio.run(_seed(settings))
        port = services.free_port()
        log = tmp_path / "server.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("bigfootlive")),
                    "serve",
                    "--host=127.0.0.1",
                    f"--port={port}",
                ],
                env={**os.environ, **env},
                cwd=tmp_path,  # no developer .env is picked up
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_ready(base_url, proc, log)
            yield Server(base_url=base_url, log=log)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        asyncio.run(services.run_script(postgres_url, postgres_emptying))
        asyncio.run(services.redis_delete_prefix(redis_url, prefix))


def _wait_ready(base_url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120  # start-up takes 20 s+ on a busy 2-core machine
    with httpx.Client(timeout=1) as http:  # one client: a new one per poll costs ~25 ms CPU
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"server exited:\n{log.read_text()}"
            try:
                if http.get(base_url + "/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    pytest.fail(f"server not ready:\n{log.read_text()}")


def _admin_token(base_url: str) -> str:
    response = httpx.post(
        base_url + "/api/auth/login",
        json={"tenant": "fuzz", "email": "admin@fuzz.example", "password": PASSWORD},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


# The coverage phase (boundary and invalid values of every parameter, ~85% of the run) also
# sends each path every method it does not document, which only Starlette's router answers
# (405): tests/test_routes.py asserts that on every path, in-process.
CONFIG = """
[phases.coverage]
unexpected-methods = []
"""


def _fuzz(server: Server, cwd: Path, token: str, *selection: str) -> None:
    config = cwd / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        _schemathesis(),
        "--config-file",
        str(config),
        "run",
        server.base_url + "/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        f"--checks={CHECKS}",
        f"--max-examples={MAX_EXAMPLES}",
        f"--seed={SEED}",
        "--generation-database=none",
        "--request-timeout=20",
        "--no-color",
        *selection,
    ]
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=450, check=False
    )
    assert result.returncode == 0, (
        f"schemathesis found problems ({' '.join(selection)}):\n{result.stdout}\n{result.stderr}"
        f"\n--- server log ---\n{server.log.read_text()[-20000:]}"
    )


@pytest.mark.timeout(600)  # ~1 min on an idle machine; 3-5 min at load 15-20
def test_fuzzed_requests_get_no_server_error_and_match_the_schema(
    server: Server, tmp_path: Path
) -> None:
    # Both sessions are opened first: the first run may enrol the admin in MFA (or turn the
    # tenant's MFA policy on), after which a password alone no longer yields tokens.
    first, second = _admin_token(server.base_url), _admin_token(server.base_url)
    _fuzz(server, tmp_path, first, f"--exclude-path-regex={SESSION_ENDING}")
    _fuzz(server, tmp_path, second, f"--include-path-regex={SESSION_ENDING}")
