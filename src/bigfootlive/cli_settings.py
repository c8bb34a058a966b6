"""The settings of a CLI command, checked before anything starts (shared by `cli` and
`cli_ops`)."""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from pydantic import ValidationError

from bigfootlive.config import ConfigurationError, Settings


def load_settings(**values: Any) -> Settings:
    """The settings of a command, checked before anything starts: an invalid value, or a
    configuration NODE_ENV=production refuses, ends the command with its reasons (exit 2) and
    no traceback. Messages name variables, never their values."""
    try:
        settings = Settings(**values)
        settings.check_production()
    except ValidationError as exc:
        reasons = [
            f"{'.'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        ]
        _refuse("bigfootlive: invalid settings, not starting:", reasons)
    except ConfigurationError as exc:
        _refuse("bigfootlive: NODE_ENV=production refuses this configuration:", exc.problems)
    for warning in settings.warnings:
        typer.echo(f"bigfootlive: warning: {warning}", err=True)
    return settings


def _refuse(headline: str, reasons: list[str]) -> NoReturn:
    typer.echo("\n".join([headline, *(f"  - {reason}" for reason in reasons)]), err=True)
    raise typer.Exit(2)
