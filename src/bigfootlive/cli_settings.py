"""The settings of a CLI command, checked before anything starts (shared by `cli` and
`cli_ops`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import typer
from pydantic import ValidationError

from bigfootlive.config import ConfigurationError, Settings
from bigfootlive.kit import jsonparse

# Settings files parsed ahead (the worker template, before it forks): path -> (bytes, settings).
_preloaded: dict[str, tuple[bytes, Settings]] = {}


def preload_settings_file(path: str) -> bool:
    """Parse and check a settings file now, so that a process forked later and given the same
    file, unchanged, starts with these settings instead of parsing them again (pydantic-settings
    reads the environment and .env for every field: milliseconds of CPU per worker)."""
    try:
        data = Path(path).read_bytes()
        settings = Settings(**jsonparse.loads(data))
        settings.check_production()
    except (OSError, ValueError, ConfigurationError):
        return False  # the worker parses it itself, and refuses it with its reasons
    _preloaded[path] = (data, settings)
    return True


def load_settings_file(path: str) -> Settings:
    """`load_settings` with the values of a JSON settings file (a container worker's)."""
    data = Path(path).read_bytes()
    known = _preloaded.get(path)
    if known is not None and known[0] == data:
        for warning in known[1].warnings:
            typer.echo(f"bigfootlive: warning: {warning}", err=True)
        return known[1]
    return load_settings(**jsonparse.loads(data))


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
