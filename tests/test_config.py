"""What NODE_ENV=production refuses to start with, and how the commands say so."""

from __future__ import annotations

import base64
import os
import re
import secrets
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from bigfootlive.config import EXAMPLE_SECRETS, ConfigurationError, Settings
from bigfootlive.containers.transcoder import ingest_pull_url
from tests.fixtures.cli import invoke_cli

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent / "bigfootlive"
ENV_EXAMPLE_SECRET = "change-me-to-at-least-32-random-characters"
POSTGRES_URL = "postgresql+asyncpg://bigfoot:pw@db.internal:5432/bigfootlive"
SECRET_VARIABLES = ("JWT_SECRET", "JWT_PREVIOUS_SECRETS", "ENCRYPTION_KEYS")


def strong() -> str:
    return secrets.token_urlsafe(48)


def production(**values: Any) -> Settings:
    values = {"jwt_secret": strong(), "database_url": POSTGRES_URL, **values}
    return Settings(_env_file=None, node_env="production", **values)  # type: ignore[call-arg]


def refusal(settings: Settings) -> str:
    with pytest.raises(ConfigurationError) as raised:
        settings.check_production()
    return str(raised.value)


# --- secrets


def documented_secret_examples() -> dict[str, str]:
    """Every literal value given to a secret variable in the docs and deploy files, with where.

    `NAME=value`, `NAME: value`, `export NAME=value`; shell and compose substitutions (`$(...)`,
    `${...}`) are not examples, and comma-separated values are split."""
    files = [ROOT / ".env.example", ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    files += sorted(p for p in (ROOT / "deploy").rglob("*") if p.is_file())
    pattern = re.compile(
        rf"\b({'|'.join(SECRET_VARIABLES)})(?:=|:[ \t]+)(\"[^\"]*\"|'[^']*'|[^\s\"'`|]+)"
    )
    found: dict[str, str] = {}
    for path in files:
        for match in pattern.finditer(path.read_text()):
            value = match.group(2).strip("\"'")
            if value.startswith(("$", "#")):
                continue
            for item in filter(None, (v.strip() for v in value.split(","))):
                found[item] = f"{path.relative_to(ROOT)}: {match.group(0)}"
    return found


def test_every_secret_example_in_the_docs_and_deploy_files_is_refused_in_production():
    examples = documented_secret_examples()
    assert ENV_EXAMPLE_SECRET in examples  # the scan finds .env.example's example
    missing = {where for value, where in examples.items() if value not in EXAMPLE_SECRETS}
    assert not missing, f"add these examples to EXAMPLE_SECRETS in config.py: {sorted(missing)}"
    for value in examples:
        assert "JWT_SECRET is the development default or an example value" in refusal(
            production(jwt_secret=value)
        )


@pytest.mark.parametrize("value", sorted(EXAMPLE_SECRETS))
def test_production_refuses_the_default_and_example_jwt_secrets(value):
    message = refusal(production(jwt_secret=value))
    assert "JWT_SECRET" in message
    assert "secrets.token_urlsafe(48)" in message  # how to make one
    assert value not in message


def test_the_default_settings_are_refused_in_production():
    settings = Settings(_env_file=None, node_env="production")  # type: ignore[call-arg]
    message = refusal(settings)
    assert "JWT_SECRET is the development default" in message
    assert "SQLite" in message


@pytest.mark.parametrize(
    "prefix",
    ["change-me-", "CHANGEME", "change_me_", "my-jwt-secret-", "Secret", "example-",
     "placeholder-", "your-signing-key-", "your_key_", "replace-me-", "insecure-", "dummy-"],
)  # fmt: skip
def test_production_refuses_placeholder_words_even_in_a_random_value(prefix):
    value = prefix + secrets.token_urlsafe(48)
    message = refusal(production(jwt_secret=value))
    assert "JWT_SECRET looks like a placeholder" in message
    assert value not in message


@pytest.mark.parametrize(
    "value",
    [
        "a" * 64,
        "ab" * 32,
        "0123456789abcdef" * 4,
        "Qx7!" * 16,
        secrets.token_hex(16),  # 128 random bits as 32 hex digits: below the estimate
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
    ],
    ids=["one-char", "two-chars", "repeated-hex", "repeated-mixed", "short-hex", "nearly-one"],
)
def test_production_refuses_low_entropy_secrets(value):
    message = refusal(production(jwt_secret=value))
    assert "JWT_SECRET is too easy to guess" in message
    assert value not in message


@pytest.mark.parametrize(
    "make",
    [
        lambda: secrets.token_urlsafe(48),  # the documented command
        lambda: secrets.token_hex(32),  # openssl rand -hex 32
        lambda: base64.b64encode(secrets.token_bytes(48)).decode(),  # openssl rand -base64 48
        lambda: base64.b64encode(secrets.token_bytes(32)).decode(),  # openssl rand -base64 32
    ],
    ids=["token_urlsafe-48", "hex-32-bytes", "base64-48-bytes", "base64-32-bytes"],
)
def test_production_accepts_strong_random_secrets_everywhere(make):
    settings = production(
        jwt_secret=make(),
        jwt_previous_secrets=f"{make()},{make()}",
        encryption_keys=f"{make()},{make()}",
    )
    assert settings.production_problems() == []
    settings.check_production()


@pytest.mark.parametrize("variable", ["jwt_previous_secrets", "encryption_keys"])
def test_each_entry_of_the_secret_lists_is_checked(variable):
    weak = "a" * 64
    message = refusal(production(**{variable: f"{strong()},{weak}"}))
    assert f"{variable.upper()} (entry 2 of 2) is too easy to guess" in message
    assert "entry 1" not in message
    assert weak not in message

    alone = refusal(production(**{variable: ENV_EXAMPLE_SECRET}))
    assert f"{variable.upper()} is the development default or an example value" in alone


def test_without_encryption_keys_production_derives_the_data_key_from_the_checked_jwt_secret():
    secret = strong()
    settings = production(jwt_secret=secret)
    settings.check_production()
    assert settings.data_keys == production(jwt_secret=secret).data_keys
    assert settings.data_keys != production().data_keys


def test_derived_data_keys_follow_the_previous_jwt_secrets_for_rotation():
    old, new = strong(), strong()
    before = production(jwt_secret=old)
    during = production(jwt_secret=new, jwt_previous_secrets=old)
    after = production(jwt_secret=new)
    assert during.data_keys == [after.data_keys[0], before.data_keys[0]]  # new key encrypts
    explicit = production(jwt_secret=new, jwt_previous_secrets=old, encryption_keys=strong())
    assert len(explicit.data_keys) == 1  # ENCRYPTION_KEYS set: the JWT secrets play no part


def test_a_weak_metrics_token_is_refused_in_production():
    assert "METRICS_TOKEN" in refusal(production(metrics_token="a" * 40))
    production(metrics_token=strong()).check_production()
    production(metrics_token="").check_production()  # empty: unset


def test_every_problem_is_reported_at_once():
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        node_env="production",
        jwt_secret=ENV_EXAMPLE_SECRET,
        encryption_keys="b" * 40,
    )
    with pytest.raises(ConfigurationError) as raised:
        settings.check_production()
    assert [p.split(" ", 1)[0] for p in raised.value.problems] == [
        "JWT_SECRET",
        "ENCRYPTION_KEYS",
        "DATABASE_URL",
    ]


# --- databases


def test_production_refuses_sqlite_unless_allowed():
    message = refusal(production(database_url="sqlite+aiosqlite:///./var/bigfootlive.db"))
    assert "ALLOW_SQLITE_IN_PRODUCTION=true" in message
    assert "DATABASE_URL=postgresql+asyncpg://" in message
    production(
        database_url="sqlite+aiosqlite:///./var/bigfootlive.db", allow_sqlite_in_production=True
    ).check_production()
    production(database_url=POSTGRES_URL).check_production()


def test_mongodb_uri_is_refused_in_production_without_showing_it():
    uri = "mongodb://admin:hunter2-mongo@mongo.internal:27017/bigfootlive"
    message = refusal(production(mongodb_uri=uri))
    assert "MONGODB_URI" in message
    assert "DATABASE_URL replaces it" in message
    assert "DATABASE_URL=postgresql+asyncpg://" in message
    assert "hunter2" not in message


def test_mongodb_uri_is_a_warning_outside_production():
    uri = "mongodb://admin:hunter2-mongo@mongo.internal:27017/bigfootlive"
    settings = Settings(_env_file=None, mongodb_uri=uri)  # type: ignore[call-arg]
    settings.check_production()  # development: not refused
    [warning] = settings.warnings
    assert "MONGODB_URI is set, but MongoDB is not supported" in warning
    assert "DATABASE_URL" in warning
    assert "uses SQLite" in warning
    assert "hunter2" not in warning
    assert Settings(_env_file=None, mongodb_uri="").warnings == []  # type: ignore[call-arg]


# --- .env.example


def test_env_example_runs_in_development_and_its_secret_is_refused_in_production():
    example = ROOT / ".env.example"
    settings = Settings(_env_file=example)  # type: ignore[call-arg]
    assert settings.node_env == "development"
    assert settings.jwt_secret.get_secret_value() == ENV_EXAMPLE_SECRET
    assert settings.warnings == []
    settings.check_production()
    in_production = Settings(_env_file=example, node_env="production")  # type: ignore[call-arg]
    assert "JWT_SECRET is the development default" in refusal(in_production)


# --- the commands


def command_env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "JWT_", "ENCRYPTION_", "NODE_ENV", "MONGODB_"))
    }
    env.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/var/bigfootlive.db",
        MAIL_OUTBOX_DIR=str(tmp_path / "outbox"),
        **values,
    )
    return env


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command in this process (tests/fixtures/cli.py); `run_process` for a real one."""
    return invoke_cli(args, env, cwd=cwd)


def run_process(
    args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    # cwd: a directory without a .env file, so only `env` configures the command
    return subprocess.run(
        [str(BIN), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def assert_refused(done: subprocess.CompletedProcess[str], *expected: str, hidden: str) -> None:
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    for text in expected:
        assert text in done.stderr
    assert "Traceback" not in output
    assert hidden not in output
    assert "Uvicorn running" not in output  # refused before the server started


def test_serve_refuses_the_example_secret_in_production_with_exit_2(tmp_path):
    env = command_env(
        tmp_path,
        NODE_ENV="production",
        JWT_SECRET=ENV_EXAMPLE_SECRET,
        ALLOW_SQLITE_IN_PRODUCTION="true",
        PORT="1",  # never bound: the command must stop before uvicorn
    )
    done = run_process(["serve"], env, tmp_path)  # a real process: no traceback, exit 2
    assert_refused(
        done,
        "NODE_ENV=production refuses this configuration",
        "JWT_SECRET is the development default or an example value",
        "secrets.token_urlsafe(48)",
        hidden=ENV_EXAMPLE_SECRET,
    )
    assert not (tmp_path / "var").exists()  # nothing migrated either


@pytest.mark.parametrize(
    "args",
    [["worker"], ["migrate"], ["container", "run", "--event", str(uuid.uuid4())]],
    ids=["worker", "migrate", "container-run"],
)
def test_workers_and_migrate_refuse_a_weak_encryption_key_in_production(tmp_path, args):
    weak = "z" * 48
    env = command_env(
        tmp_path,
        NODE_ENV="production",
        JWT_SECRET=strong(),
        ENCRYPTION_KEYS=weak,
        MONGODB_URI="mongodb://root:hunter2-mongo@mongo:27017/x",
    )
    assert_refused(
        run(args, env, tmp_path),
        "ENCRYPTION_KEYS is too easy to guess",
        "MONGODB_URI is set, but MongoDB is not supported",
        hidden=weak,
    )


def test_an_invalid_setting_is_a_message_not_a_traceback(tmp_path):
    short = "too-short-" + "k" * 5
    env = command_env(tmp_path, JWT_SECRET=short)
    assert_refused(
        run(["serve"], env, tmp_path),
        "invalid settings",
        "JWT_SECRET: Value error, JWT_SECRET must be at least 32 characters",
        hidden=short,
    )


def test_a_strong_production_configuration_runs_and_mongodb_uri_warns_in_development(tmp_path):
    strong_env = command_env(
        tmp_path, NODE_ENV="production", JWT_SECRET=strong(), ALLOW_SQLITE_IN_PRODUCTION="true"
    )
    done = run(["migrate"], strong_env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "var" / "bigfootlive.db").exists()

    development = command_env(tmp_path, MONGODB_URI="mongodb://root:hunter2-mongo@mongo:27017/x")
    done = run(["migrate"], development, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "warning: MONGODB_URI is set, but MongoDB is not supported" in done.stderr
    assert "hunter2" not in done.stdout + done.stderr


def test_the_transcoder_pulls_from_the_configured_rtmp_port():
    """Unset, TRANSCODER_INPUT_URL follows RTMP_PORT: the recorder of a server on another port
    found no stream at 1935 and no recording was ever made."""
    moved = Settings(_env_file=None, jwt_secret=strong(), rtmp_port=19350)  # type: ignore[call-arg]
    assert ingest_pull_url(moved, "pb1") == "rtmp://127.0.0.1:19350/live/pb1"
    explicit = "rtmp://media.internal:1935/live/{playback_id}"
    kept = Settings(  # type: ignore[call-arg]
        _env_file=None, jwt_secret=strong(), rtmp_port=19350, transcoder_input_url=explicit
    )
    assert ingest_pull_url(kept, "pb1") == "rtmp://media.internal:1935/live/pb1"


# --- PUBLIC_BASE_URL


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, "http://127.0.0.1:3001"),
        ({"port": 18123}, "http://127.0.0.1:18123"),
        ({"host": "0.0.0.0", "port": 4000}, "http://127.0.0.1:4000"),  # noqa: S104
        ({"host": "::1", "port": 4000}, "http://[::1]:4000"),
        ({"port": 4000, "public_base_url": "https://live.example.org"}, "https://live.example.org"),
    ],
)
def test_public_base_url_defaults_to_where_the_server_listens(values, expected):
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    assert settings.public_base_url == expected


def test_serve_with_a_port_option_links_to_that_port(tmp_path, monkeypatch):
    """`bigfootlive serve --port N` (or PORT=N make run): the app's watch_url and emailed links
    name port N, not 3001."""
    import uvicorn

    seen: dict[str, Any] = {}

    def fake_run(app: str, **options: Any) -> None:  # the app's settings, as a worker loads them
        seen.update(options, public_base_url=Settings().public_base_url)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    env = command_env(tmp_path, AUTO_MIGRATE="false", MEDIA_SERVER_MODE="none")
    done = run(["serve", "--port", "18124"], env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert seen["port"] == 18124
    assert seen["public_base_url"] == "http://127.0.0.1:18124"
