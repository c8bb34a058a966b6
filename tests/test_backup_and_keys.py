"""Backups and key rotation (docs/operations.md).

- `bigfootlive backup create` / `backup restore` (pg_dump / pg_restore; SQLite's backup API):
  restored into a fresh database, the app serves the same data, and an encrypted secret (a
  stream key) decrypts and is found by its lookup hash; restored with other keys, the restore
  says the secrets are unreadable.
- Rotation without downtime: JWT_SECRET with the old one in JWT_PREVIOUS_SECRETS (old tokens
  valid during the overlap, refused after), and the keys for secrets at rest (derived from
  JWT_SECRET, then an explicit ENCRYPTION_KEYS), moved by `keys reencrypt` while the app serves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from bigfootlive.app import create_app
from bigfootlive.authz.roles import Role
from bigfootlive.composition import AppState
from bigfootlive.config import Settings
from bigfootlive.db import Database
from bigfootlive.migrations import upgrade_database
from bigfootlive.rekey import scan
from tests.conftest import TestSettings, base_settings
from tests.fixtures import services
from tests.fixtures.factories import Factory

BIN = Path(sys.executable).with_name("bigfootlive")
HOOK = "/api/streaming/hooks/nginx-rtmp"
J1 = "first-jwt-signing-value-" + "a1B2c3D4" * 6
J2 = "second-jwt-signing-value-" + "e5F6g7H8" * 6
K1 = "data-key-one-" + "Zx9Yw8Vu7" * 6
K3 = "data-key-three-" + "Ts6Rq5Po4" * 6


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[AppState, httpx.AsyncClient]]:
    app = create_app(settings, loops=())
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app.state.bigfoot, client


def cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    clean.update(NODE_ENV="test", LOG_LEVEL="WARNING", **env)
    return subprocess.run(
        [str(BIN), *args], env=clean, cwd=cwd, capture_output=True, text=True, timeout=120
    )


async def publish(client: httpx.AsyncClient, api_key: str, stream_key: str) -> int:
    form = f"call=publish&app=ingest&name={stream_key}&addr=127.0.0.1&clientid=7"
    response = await client.post(
        HOOK,
        content=form,
        headers={"X-API-Key": api_key, "content-type": "application/x-www-form-urlencoded"},
    )
    return response.status_code


async def stream_key_of(client: httpx.AsyncClient, headers: dict[str, str], event_id: str) -> str:
    response = await client.get(f"/api/streaming/events/{event_id}/stream", headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["ingest"]["stream_key"])


async def seed(state: AppState, client: httpx.AsyncClient) -> dict[str, Any]:
    """A tenant, an admin and a streamer, an event (its stream key encrypted) and an API key."""
    factory = Factory(state, client)
    tenant = await factory.tenant()
    admin = await factory.user(tenant, role=Role.ADMIN)
    streamer = await factory.user(tenant, role=Role.STREAMER)
    created = await client.post(
        "/api/events", json={"title": "Kept across restores"}, headers=streamer.headers
    )
    assert created.status_code == 201, created.text
    started = await client.post(
        f"/api/events/{created.json()['id']}/start", headers=streamer.headers
    )
    assert started.status_code == 200, started.text
    key = await client.post("/api/api-keys", json={"name": "media"}, headers=admin.headers)
    assert key.status_code == 201, key.text
    return {
        "tenant": tenant.slug,
        "email": streamer.user.email,
        "password": streamer.password,
        "event_id": created.json()["id"],
        "stream_key": created.json()["ingest"]["stream_key"],
        "api_key": key.json()["key"],
        "streamer_headers": streamer.headers,
    }


async def sign_in(client: httpx.AsyncClient, seeded: dict[str, Any]) -> dict[str, str]:
    response = await client.post(
        "/api/auth/login",
        json={k: seeded[k] for k in ("tenant", "email", "password")},
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def databases(backend: str, tmp_path: Path) -> Iterator[list[str]]:
    """Database URLs made by the test (source, restore targets), dropped at the end."""
    made: list[str] = []
    yield made
    if backend == "postgres":
        for url in made:
            services.drop_database_later(url)


async def new_database(backend: str, tmp_path: Path, made: list[str]) -> str:
    if backend == "postgres":
        services.require(services.port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")
        url = await services.create_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}/db-{len(made)}.sqlite"
    made.append(url)
    return url


@pytest.mark.timeout(300)
async def test_a_backup_restored_into_a_fresh_database_serves_the_same_data(
    backend, tmp_path, smtp_sink, databases
):
    source = await new_database(backend, tmp_path, databases)
    await upgrade_database(source)
    keys = {"JWT_SECRET": J1, "ENCRYPTION_KEYS": K1}
    values = base_settings(tmp_path, smtp_sink, redis_url=None, jwt_secret=J1)
    async with serving(TestSettings(**values, database_url=source, encryption_keys=[K1])) as (
        state,
        client,
    ):
        seeded = await seed(state, client)

    dump = tmp_path / "bigfootlive.dump"
    made = cli("backup", "create", str(dump), env={"DATABASE_URL": source, **keys}, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert dump.stat().st_size > 0
    assert seeded["stream_key"].encode() not in dump.read_bytes()  # encrypted at rest

    target = await new_database(backend, tmp_path, databases)  # fresh: no tables at all
    restored = cli(
        "backup", "restore", str(dump), env={"DATABASE_URL": target, **keys}, cwd=tmp_path
    )
    assert restored.returncode == 0, restored.stderr
    report = json.loads(restored.stdout.strip().splitlines()[-1])["secrets_at_rest"]
    assert report["unreadable"] == 0
    assert report["current"] >= 1

    async with serving(TestSettings(**values, database_url=target, encryption_keys=[K1])) as (
        _,
        client,
    ):
        headers = await sign_in(client, seeded)  # the password hash came back too
        event = await client.get(f"/api/events/{seeded['event_id']}", headers=headers)
        assert event.status_code == 200
        assert event.json()["title"] == "Kept across restores"
        assert await stream_key_of(client, headers, seeded["event_id"]) == seeded["stream_key"]
        assert await publish(client, seeded["api_key"], seeded["stream_key"]) == 302

    # the same backup without its keys: the data is there, the secrets are not readable
    elsewhere = await new_database(backend, tmp_path, databases)
    wrong = {"DATABASE_URL": elsewhere, "JWT_SECRET": J2, "ENCRYPTION_KEYS": K3}
    refused = cli("backup", "restore", str(dump), env=wrong, cwd=tmp_path)
    assert refused.returncode == 1
    assert "ENCRYPTION_KEYS" in refused.stderr
    status = cli("keys", "status", env=wrong, cwd=tmp_path)
    assert status.returncode == 1
    assert json.loads(status.stdout)["unreadable"] >= 1
    assert K1 not in refused.stdout + refused.stderr + status.stdout + status.stderr


def variant(settings: Settings, **updates: Any) -> Settings:
    """`settings` with `updates`, validated afresh (strings become secrets, keys re-derived)."""
    return TestSettings(**{**settings.model_dump(), **updates})


async def rekey(settings: Settings) -> dict[str, Any]:
    db = Database.from_settings(settings)
    try:
        return (await scan(db, settings, rewrite=True)).as_dict()
    finally:
        await db.dispose()


@pytest.mark.timeout(300)
async def test_jwt_and_data_keys_rotate_without_downtime(settings):
    # 1. today: JWT_SECRET only; the data key derives from it
    first = variant(settings, **{"jwt_secret": J1, "encryption_keys": []})
    async with serving(first) as (state, client):
        seeded = await seed(state, client)
        old_token = await sign_in(client, seeded)

    # 2. the overlap: a new JWT_SECRET, the old one still accepted (and its derived data key
    #    still readable); secrets at rest are moved to the new key while the app serves
    overlap = variant(
        settings, **{"jwt_secret": J2, "jwt_previous_secrets": [J1], "encryption_keys": []}
    )
    async with serving(overlap) as (_, client):
        assert (await client.get("/api/auth/me", headers=old_token)).status_code == 200
        new_token = await sign_in(client, seeded)
        assert await stream_key_of(client, new_token, seeded["event_id"]) == seeded["stream_key"]
        moved = await rekey(overlap)
        assert moved["rewritten"] >= 1
        assert moved["unreadable"] == 0
        # still serving, before and after the rewrite
        assert await stream_key_of(client, old_token, seeded["event_id"]) == seeded["stream_key"]
        again = await rekey(overlap)
        assert again["rewritten"] == 0  # safe to repeat

    # 3. after the overlap: the old secret is gone; its tokens are refused, the data is not lost
    after = variant(settings, **{"jwt_secret": J2, "jwt_previous_secrets": []})
    async with serving(after) as (_, client):
        assert (await client.get("/api/auth/me", headers=old_token)).status_code == 401
        assert (await client.get("/api/auth/me", headers=new_token)).status_code == 200
        assert await stream_key_of(client, new_token, seeded["event_id"]) == seeded["stream_key"]

    # 4. moving to explicit ENCRYPTION_KEYS: the new key first, the derived one still listed,
    #    `keys reencrypt`, then the derived one dropped
    listed = variant(settings, **{"jwt_secret": J2, "encryption_keys": [K3, f"derived:{J2}"]})
    async with serving(listed) as (_, client):
        assert await stream_key_of(client, new_token, seeded["event_id"]) == seeded["stream_key"]
        assert (await rekey(listed))["rewritten"] >= 1
    final = variant(settings, **{"jwt_secret": J2, "encryption_keys": [K3]})
    async with serving(final) as (_, client):
        assert await stream_key_of(client, new_token, seeded["event_id"]) == seeded["stream_key"]
        assert await publish(client, seeded["api_key"], seeded["stream_key"]) == 302
