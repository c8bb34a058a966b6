"""Every API test runs twice: on PostgreSQL + Redis, and on the embedded SQLite + in-process."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from bigfootlive.app import create_app
from bigfootlive.composition import AppState
from bigfootlive.config import Settings
from bigfootlive.migrations import upgrade_database
from tests.fixtures import services
from tests.fixtures.factories import Factory

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[services.SMTPSink]:
    sink = services.SMTPSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is much faster)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    asyncio.run(upgrade_database(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of our own (random name), migrated once and dropped at the end."""
    services.require(services.port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")
    url = asyncio.run(services.create_database())
    try:
        asyncio.run(upgrade_database(url))
        yield url
    finally:
        asyncio.run(services.drop_database(url))


@pytest.fixture(scope="session")
def redis_url() -> str:
    services.require(services.port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
    return services.REDIS_URL


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def base_settings(tmp_path: Path, smtp: services.SMTPSink, **overrides: Any) -> dict[str, Any]:
    return {
        "node_env": "test",
        "jwt_secret": "test-secret-" + "x" * 60,
        "public_base_url": "http://testserver",
        "smtp_host": smtp.host,
        "smtp_port": smtp.port,
        "smtp_starttls": False,
        "mail_outbox_dir": str(tmp_path / "outbox"),
        "auto_migrate": False,
        "log_json": True,
        "log_level": "WARNING",
        # Cheap hashing keeps the suite fast; production parameters are checked in
        # tests/identity/test_passwords.py.
        "argon2_memory_kib": 1024,
        "argon2_time_cost": 1,
        **overrides,
    }


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change settings for its tests."""
    return {}


@pytest.fixture
def settings(
    request: pytest.FixtureRequest,
    backend: str,
    tmp_path: Path,
    smtp_sink: services.SMTPSink,
    sqlite_template: Path,
    settings_overrides: dict[str, Any],
) -> Iterator[Settings]:
    smtp_sink.messages.clear()
    if backend == "sqlite":
        db = tmp_path / "bigfootlive.db"
        shutil.copy(sqlite_template, db)
        values = base_settings(
            tmp_path, smtp_sink, database_url=f"sqlite+aiosqlite:///{db}", redis_url=None
        )
        yield Settings(**{**values, **settings_overrides})
        return
    pg = request.getfixturevalue("postgres_url")
    redis = request.getfixturevalue("redis_url")
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    values = base_settings(
        tmp_path, smtp_sink, database_url=pg, redis_url=redis, redis_key_prefix=prefix
    )
    yield Settings(**{**values, **settings_overrides})
    asyncio.run(services.truncate_all(pg))
    asyncio.run(services.redis_delete_prefix(redis, prefix))


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
def state(app: FastAPI) -> AppState:
    result: AppState = app.state.bigfoot
    return result


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def factory(state: AppState, client: httpx.AsyncClient) -> Factory:
    return Factory(state, client)
