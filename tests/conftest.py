"""Every API test runs twice: on PostgreSQL + Redis, and on the embedded SQLite + in-process.

- Databases: SQLite is a copy of a template migrated once per worker; PostgreSQL is one database
  per worker (random name, migrated once, dropped at the end by a detached process: DROP
  DATABASE waits for a checkpoint), emptied after each test by DELETE in foreign-key order
  (services.emptying_script) over one connection kept for the session (services.Cleaner).
- The app: one per worker and shape (`app_for`); each test starts its lifespan afresh with its
  own settings (`TestSettings`: the test's values only, never the environment or a .env file).
- Cost: what lives for the session (modules, collected tests, each shape's app) is out of the
  garbage collector's reach (`keep_out_of_the_collector`); test databases commit without
  waiting for the disk (services.create_database); the factory's users share one password hash
  and sign in in-process (tests/fixtures/factories.py).
- Background loops: only the analytics flush, unless the test asks for more with
  `@pytest.mark.loops(...)` or a conftest overrides the `loops` fixture (containers, realtime).
- Waiting: polling.until(condition) for something to happen; jobs.settled(state.jobs) for
  "and nothing more happens" after jobs; an injected clock (clock.ManualClock on state.clock)
  for rules that count time down; rather than fixed sleeps. Where real time is what is tested
  (TTLs kept by Redis, MFA code lifetimes, the cron loop) a test waits for the outcome within a
  bound; a few short sleeps remain in tests/kit (cache TTLs of each backend) and where a test
  shows that nothing more happens.
"""

from __future__ import annotations

import asyncio
import gc
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from bigfootlive import direct_http
from bigfootlive.app import GC_THRESHOLDS, Loop, create_app
from bigfootlive.composition import AppState
from bigfootlive.config import Settings
from bigfootlive.migrations import upgrade_database
from bigfootlive.observability.logging import configure_logging
from bigfootlive.row_security import PLATFORM_ROWS, bind_row_scope
from tests.fixtures import services
from tests.fixtures.factories import CLIENT_IP, Factory
from tests.fixtures.scheduling import (  # noqa: F401 (hooks: longest tests first)
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_xdist_make_scheduler,
)

BACKENDS = ["sqlite", "postgres"]

# The tests' own code (factories, direct queries, assertions) acts for the platform: it builds
# and checks every tenant's rows. The app under test does not inherit this: each request and
# WebSocket, and the lifespan with its loops, start acting for nobody (app.RowScopePerRequest)
# until authentication or an audited platform scope says otherwise, and the app connects as a
# role that row-level security binds (services.APP_ROLE).
bind_row_scope(PLATFORM_ROWS)


def keep_out_of_the_collector() -> None:
    """What lives for the whole session (modules, collected tests, a shape's app) out of the
    garbage collector's reach, as the app's own `gc_tuning` does in production (TestSettings
    turns that off: a lifespan per test would freeze each test's garbage). Without it a full
    collection walks ~450k long-lived objects every few tests: measured a third of a worker's
    CPU. A test's own cycles are still collected (collected first here, never frozen)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def pytest_collection_finish(session: pytest.Session) -> None:
    keep_out_of_the_collector()


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
        services.drop_database_later(url)


@pytest.fixture(scope="session")
def postgres_app_url(postgres_url: str) -> str:
    """The same database as the application role: no owner, no superuser, so row-level
    security applies to the app under test as it does in production."""
    return asyncio.run(services.app_role_url(postgres_url))


@pytest.fixture(scope="session")
def postgres_emptying(postgres_url: str) -> str:
    """The SQL that empties the database after each test (see services.emptying_script)."""
    return asyncio.run(services.emptying_script(postgres_url))


@pytest.fixture(scope="session")
def postgres_cleaner(
    postgres_url: str, postgres_emptying: str, redis_url: str
) -> Iterator[services.Cleaner]:
    """Empties the database and a test's Redis keys after each PostgreSQL test."""
    cleaner = services.Cleaner(postgres_url, postgres_emptying, redis_url)
    yield cleaner
    cleaner.close()


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
        # the event containers' files (DVR copy, thumbnails, recordings): never the checkout's
        "recordings_dir": str(tmp_path / "media"),
        "auto_migrate": False,
        "log_json": True,
        "log_level": "WARNING",
        # Cheap hashing keeps the suite fast; production parameters are checked in
        # tests/identity/test_passwords.py.
        "argon2_memory_kib": 1024,
        "argon2_time_cost": 1,
        **overrides,
    }


class TestSettings(Settings):
    """Settings from the test's own values only: neither the environment nor a .env file of
    the machine running the suite changes them (and reading both for every field takes a
    noticeable part of a short test)."""

    __test__ = False  # not a test class, despite its name

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    # Many apps start in one test process: frozen, their cycles would never be collected.
    gc_tuning: bool = False


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
        yield TestSettings(**{**values, **settings_overrides})
        return
    app_url = request.getfixturevalue("postgres_app_url")
    redis = request.getfixturevalue("redis_url")
    cleaner: services.Cleaner = request.getfixturevalue("postgres_cleaner")
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    values = base_settings(
        tmp_path, smtp_sink, database_url=app_url, redis_url=redis, redis_key_prefix=prefix
    )
    yield TestSettings(**{**values, **settings_overrides})
    cleaner.clean(prefix)


# The analytics buffer's flush is part of how the API answers (without it every beacon is rolled
# up as it arrives, as in a worker process); the other loops change things on their own.
DEFAULT_LOOPS = frozenset({Loop.ANALYTICS_FLUSH})


@pytest.fixture
def loops(request: pytest.FixtureRequest) -> frozenset[Loop]:
    """The background loops the test's app runs: DEFAULT_LOOPS, those named by
    `@pytest.mark.loops(...)` on the test or its module, and those a conftest adds by
    overriding this fixture."""
    marked = {Loop(name) for mark in request.node.iter_markers("loops") for name in mark.args}
    return DEFAULT_LOOPS | marked


# One app per worker and shape: FastAPI prepares an app's routes on its first requests (the
# dependency analysis of every endpoint), which takes longer than most tests. The lifespan
# builds everything else afresh from `app.state.settings` at each start.
_APPS: dict[tuple[Any, ...], FastAPI] = {}


def app_for(settings: Settings, loops: frozenset[Loop]) -> FastAPI:
    if settings.warnings:  # logged by create_app: such a test gets an app of its own
        return create_app(settings, loops=loops)
    # What create_app reads from the settings when it builds the app (the rest is read at start).
    shape = (loops, settings.max_body_bytes, tuple(settings.cors_origins))
    shape += (settings.log_level, settings.log_json)
    application = _APPS.get(shape)
    if application is None:
        application = _APPS[shape] = create_app(settings, loops=loops)
        keep_out_of_the_collector()  # kept for the session
    else:  # what create_app does besides building the app
        settings.check_production()
        configure_logging(settings.log_level, settings.log_json)  # a test may have changed it
        application.state.settings = settings
    return application


@pytest.fixture
async def app(settings: Settings, loops: frozenset[Loop]) -> AsyncIterator[FastAPI]:
    application = app_for(settings, loops)
    async with LifespanManager(application):
        yield application


@pytest.fixture
def state(app: FastAPI) -> AppState:
    result: AppState = app.state.bigfoot
    return result


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def factory(state: AppState, client: httpx.AsyncClient) -> Factory:
    return Factory(state, client, client_ip=CLIENT_IP)  # `client` is the app's, in-process


@pytest.fixture
def served_directly(monkeypatch) -> list[str]:
    """The paths `direct_http.DirectHttp` served past the HTTP stack (media hooks, sign-in,
    beacons): a test of a direct path shows it was taken, not only that the answer is right."""
    seen: list[str] = []
    original = direct_http.DirectHttp.__call__

    async def counting(self: Any, scope: Any, receive: Any, send: Any, found: Any) -> None:
        seen.append(scope["path"])
        await original(self, scope, receive, send, found)

    monkeypatch.setattr(direct_http.DirectHttp, "__call__", counting)
    return seen
