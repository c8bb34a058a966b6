"""Alembic migrations, shipped inside the package so `bigfootlive migrate` works anywhere."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

HERE = Path(__file__).parent


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.set_main_option(
        "file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d_%%(slug)s"
    )
    return config


async def upgrade_database(database_url: str, revision: str = "heads") -> None:
    """Run pending migrations (in a thread: Alembic drives its own event loop for async URLs)."""
    if database_url.startswith("sqlite"):
        _ensure_sqlite_dir(database_url)
    await asyncio.to_thread(command.upgrade, alembic_config(database_url), revision)


def _ensure_sqlite_dir(database_url: str) -> None:
    path = database_url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
