"""Migrations: one head, and the migrated schema matches the models on both databases."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.script import ScriptDirectory

from bigfootlive.migrations import alembic_config


def test_there_is_exactly_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite:///unused.db"))
    assert len(script.get_heads()) == 1


def test_migrated_sqlite_matches_the_models(sqlite_template) -> None:
    command.check(alembic_config(f"sqlite+aiosqlite:///{sqlite_template}"))


def test_migrated_postgres_matches_the_models(postgres_url) -> None:
    command.check(alembic_config(postgres_url))


def test_downgrade_to_base_and_up_again_on_postgres(postgres_url, tmp_path) -> None:
    from tests.fixtures import services

    url = asyncio.run(services.create_database())
    try:
        config = alembic_config(url)
        command.upgrade(config, "heads")
        command.downgrade(config, "base")
        command.upgrade(config, "heads")
        command.check(config)
    finally:
        services.drop_database_later(url)
