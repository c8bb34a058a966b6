"""The Dockerfile and compose file cannot be run here (no Docker engine); check what they say.

Every variable the compose file gives BigfootLive is a real setting, every setting is documented
in .env.example, and the images are built and run the way the deployment depends on.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bigfootlive.config import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
# The Compose Specification's own schema, vendored (source and licence: tests/schemas/README.md)
COMPOSE_SCHEMA = ROOT / "tests" / "schemas" / "compose-spec.json"
# built from our image; their env is our Settings
OUR_SERVICES = ("migrate", "api", "worker", "media-server")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


@pytest.fixture(scope="module")
def dockerfile() -> list[str]:
    """Instructions, with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [
        line.strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")
    ]


@pytest.fixture(scope="module")
def compose_validator() -> jsonschema.Draft7Validator:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


def compose_errors(validator: jsonschema.Draft7Validator, document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def setting_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def test_the_compose_file_is_valid_against_the_compose_specification(compose, compose_validator):
    errors = compose_errors(compose_validator, compose)
    assert not errors, errors


@pytest.mark.parametrize(
    ("breakage", "where"),
    [
        (lambda c: c["services"]["api"].update(restart=["always"]), "services/api/restart"),
        (lambda c: c["services"]["api"].update(prots=["3001:3001"]), "services/api"),
        (lambda c: c["services"]["worker"].update(depends_on={"redis": {"condition": "up"}}),
         "services/worker/depends_on"),
        (lambda c: c.update(services=["api"]), "services"),
    ],
    ids=["restart-not-a-string", "misspelt-key", "unknown-depends-on-condition", "services-a-list"],
)  # fmt: skip
def test_an_invalid_compose_file_is_refused(compose, compose_validator, breakage, where):
    broken = copy.deepcopy(compose)
    breakage(broken)
    errors = compose_errors(compose_validator, broken)
    assert any(e.startswith(f"{where}:") for e in errors), errors


def test_compose_has_the_api_worker_media_server_postgres_and_redis(compose):
    assert {"api", "worker", "media-server", "postgres", "redis"} <= set(compose["services"])


def test_every_variable_given_to_our_services_is_a_real_setting(compose):
    unknown = {
        (service, name)
        for service in OUR_SERVICES
        for name in compose["services"][service]["environment"]
        if name not in setting_names()
    }
    assert not unknown, f"not Settings fields (typo?): {sorted(unknown)}"


def test_every_setting_is_documented_in_env_example():
    documented = set(
        re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.MULTILINE)
    )
    missing = setting_names() - documented
    assert not missing, f"add to .env.example: {sorted(missing)}"


def test_the_jwt_secret_is_required_not_baked_into_the_compose_file(compose):
    for service in OUR_SERVICES:
        secret = compose["services"][service]["environment"]["JWT_SECRET"]
        assert re.fullmatch(r"\$\{JWT_SECRET:\?[^}]*\}", secret), secret


def test_our_services_run_the_right_commands_on_postgres_and_redis(compose):
    services = compose["services"]
    assert services["api"]["command"] == ["serve"]
    assert services["worker"]["command"] == ["worker"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["media-server"]["command"] == ["media-server", "run"]
    for service in OUR_SERVICES:
        env = services[service]["environment"]
        assert env["DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert "@postgres:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"].startswith("redis://redis:")
        assert env["NODE_ENV"] == "production"
    assert services["api"]["environment"]["HOST"] == "0.0.0.0"  # noqa: S104 - inside a container
    assert services["api"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )


def test_the_api_and_the_data_services_have_healthchecks(compose):
    services = compose["services"]
    assert "/health" in " ".join(services["api"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "ping" in " ".join(services["redis"]["healthcheck"]["test"])
    for name in ("api", "worker"):
        for dependency in ("redis",):
            assert services[name]["depends_on"][dependency]["condition"] == "service_healthy"


def test_the_image_is_multi_stage_and_installs_the_locked_dependencies(dockerfile):
    stages = [line for line in dockerfile if line.startswith("FROM ")]
    assert len(stages) >= 2
    syncs = [line for line in dockerfile if "uv sync" in line]
    assert syncs
    assert all("--frozen" in line and "--no-dev" in line for line in syncs)


def test_the_image_runs_bigfootlive_serve_as_a_non_root_user(dockerfile):
    last_from = max(i for i, line in enumerate(dockerfile) if line.startswith("FROM "))
    final_stage = dockerfile[last_from:]
    users = [line.split()[1] for line in final_stage if line.startswith("USER ")]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    assert 'ENTRYPOINT ["bigfootlive"]' in final_stage
    assert 'CMD ["serve"]' in final_stage
    healthcheck = next(line for line in final_stage if line.startswith("HEALTHCHECK"))
    assert "/health" in healthcheck


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".git", ".venv", "var"} <= ignored


def test_the_media_server_runs_nginx_rtmp_beside_the_api(compose, dockerfile):
    media = compose["services"]["media-server"]
    assert media["build"]["target"] == "media-server"
    env = media["environment"]
    assert env["MEDIA_SERVER_MODE"] == "external"
    assert env["MEDIA_API_URL"] == "http://api:3001"  # the callbacks reach the API
    assert env["MEDIA_LISTEN_HOST"] == "0.0.0.0"  # noqa: S104 - inside a container
    assert {"1935:1935", "8080:8080"} <= set(media["ports"])
    assert "/_bfl/health" in " ".join(media["healthcheck"]["test"])
    assert media["depends_on"]["api"]["condition"] == "service_healthy"
    start = dockerfile.index(
        next(x for x in dockerfile if x.startswith("FROM base AS media-server"))
    )
    end = next(i for i in range(start + 1, len(dockerfile)) if dockerfile[i].startswith("FROM "))
    stage = dockerfile[start:end]
    installs = " ".join(line for line in stage if "apt-get install" in line)
    assert "nginx" in installs
    assert "libnginx-mod-rtmp" in installs
    users = [line.split()[1] for line in stage if line.startswith("USER ")]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    assert 'CMD ["media-server", "run"]' in stage
