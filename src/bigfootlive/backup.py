"""Backups of the database: `bigfootlive backup create FILE` and `bigfootlive backup restore FILE`.

PostgreSQL: `pg_dump --format=custom` and `pg_restore` (postgresql-client, same major version
as the server or newer), given the connection through libpq's environment variables so the
password never shows in the process list. SQLite: SQLite's online backup API (a consistent
copy while the application writes).

A backup holds the secrets at rest encrypted: restoring it is useful only with the keys it was
written with (ENCRYPTION_KEYS, or JWT_SECRET when the keys derive from it). docs/operations.md
says how to keep them.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(Exception):
    pass


def _sqlite_path(database_url: str) -> Path | None:
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite"):
        return None
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(url.database)


def _libpq_env(database_url: str) -> dict[str, str]:
    url = make_url(database_url)
    if not url.drivername.startswith("postgresql"):
        raise BackupError(f"unsupported database for backups: {url.drivername}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    values = {
        "PGHOST": url.host,
        "PGPORT": str(url.port) if url.port else None,
        "PGUSER": url.username,
        "PGPASSWORD": url.password if isinstance(url.password, str) else None,
        "PGDATABASE": url.database,
        "PGAPPNAME": "bigfootlive-backup",
    }
    env.update({k: v for k, v in values.items() if v})
    return env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: install postgresql-client")
    return found


def _run(args: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BackupError(f"{Path(args[0]).name} failed: {result.stderr.strip()[-2000:]}")


def create_backup(database_url: str, path: Path) -> None:
    """Writes a consistent backup of the database to `path`."""
    source = _sqlite_path(database_url)
    if source is not None:
        with sqlite3.connect(source) as src, sqlite3.connect(path) as dst:
            src.backup(dst)
        return
    _run(
        [
            _tool("pg_dump"),
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            f"--file={path}",
        ],
        _libpq_env(database_url),
    )


def restore_backup(path: Path, database_url: str) -> None:
    """Restores `path` into the database of `database_url`: an empty database (create it
    first), or one whose objects are replaced (--clean), in one transaction."""
    if not path.is_file():
        raise BackupError(f"no backup at {path}")
    target = _sqlite_path(database_url)
    if target is not None:
        with sqlite3.connect(path) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
        return
    _run(
        [
            _tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            "--dbname=" + (make_url(database_url).database or ""),
            str(path),
        ],
        _libpq_env(database_url),
    )
