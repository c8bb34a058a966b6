"""`bigfootlive backup …` and `bigfootlive keys …`: the operator's commands of
docs/operations.md (backups and restores, key rotation)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

backup_app = typer.Typer(help="Back up and restore the database.", no_args_is_help=True)
keys_app = typer.Typer(help="Keys for secrets at rest: status and rotation.", no_args_is_help=True)


@backup_app.command("create")
def backup_create(
    path: Annotated[Path, typer.Argument(help="File to write (pg_dump custom format)")],
) -> None:
    """Back up DATABASE_URL to PATH (pg_dump, or SQLite's online backup)."""
    from bigfootlive.backup import BackupError, create_backup
    from bigfootlive.cli_settings import load_settings

    settings = load_settings()
    try:
        create_backup(settings.database_url, path)
    except BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"backup written to {path} ({path.stat().st_size} bytes)")


@backup_app.command("restore")
def backup_restore(
    path: Annotated[Path, typer.Argument(help="A file written by `backup create`")],
) -> None:
    """Restore PATH into DATABASE_URL (create the database first; its objects are replaced)."""
    from bigfootlive.backup import BackupError, restore_backup
    from bigfootlive.cli_settings import load_settings

    settings = load_settings()
    try:
        restore_backup(path, settings.database_url)
    except BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo("restored; run `bigfootlive migrate` if the backup is older than this version")
    report = asyncio.run(_scan(rewrite=False))
    typer.echo(json.dumps({"secrets_at_rest": report}))
    if report["unreadable"]:
        typer.echo(
            "error: some secrets cannot be decrypted with the configured keys: set the "
            "ENCRYPTION_KEYS (or JWT_SECRET) the backup was written with",
            err=True,
        )
        raise typer.Exit(1)


async def _scan(*, rewrite: bool) -> dict[str, object]:
    from bigfootlive.cli_settings import load_settings
    from bigfootlive.db import Database
    from bigfootlive.rekey import scan

    settings = load_settings()
    db = Database.from_settings(settings)
    try:
        return (await scan(db, settings, rewrite=rewrite)).as_dict()
    finally:
        await db.dispose()


@keys_app.command("status")
def keys_status() -> None:
    """Count the secrets at rest under the current key, under older keys, and unreadable."""
    report = asyncio.run(_scan(rewrite=False))
    typer.echo(json.dumps(report))
    if report["unreadable"]:
        raise typer.Exit(1)


@keys_app.command("reencrypt")
def keys_reencrypt() -> None:
    """Rewrite every secret at rest under the first key of ENCRYPTION_KEYS (safe to repeat;
    the application keeps serving)."""
    report = asyncio.run(_scan(rewrite=True))
    typer.echo(json.dumps(report))
    if report["unreadable"]:
        raise typer.Exit(1)
