"""`scripts/bootstrap` without options (what `make run` runs first) on an environment that
`scripts/bootstrap --test` made: it must not take the test and lint tools away (it did, with
uv's exact sync, so `make check` or a test run in another shell broke after `make run`).

uv is replaced by a wrapper that runs the real uv's `sync` with `--dry-run`: nothing changes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _real_uv() -> str | None:
    found = shutil.which("uv")
    local = ROOT / ".tools" / "uv" / "bin" / "uv"
    return found or (str(local) if local.exists() else None)


def test_make_run_keeps_the_test_tools_of_a_test_environment(tmp_path: Path) -> None:
    uv = _real_uv()
    if uv is None or not (ROOT / ".venv" / "bin" / "pytest").exists():
        pytest.skip("no uv, or .venv is not a test environment")
    wrapper = tmp_path / "uv"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = sync ] || exec "{uv}" "$@"\n'
        'args=""\n'
        'for a in "$@"; do [ "$a" = --quiet ] || args="$args $a"; done\n'
        f'exec "{uv}" $args --dry-run\n'
    )
    wrapper.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run(
        [str(ROOT / "scripts" / "bootstrap")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "Would use project environment" in out  # the sync ran, as a dry run
    assert "Would uninstall" not in out, out
