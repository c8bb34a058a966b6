"""The package's static files: where they are, their cache-busting URLs, the vendor manifest."""

from __future__ import annotations

import hashlib
import mimetypes
from functools import lru_cache
from pathlib import Path
from typing import Any

from bigfootlive.kit import jsonparse

STATIC_DIR = Path(__file__).parent / "static"
TEMPLATES_DIR = Path(__file__).parent / "templates"
VENDOR_DIR = STATIC_DIR / "vendor"
MANIFEST = VENDOR_DIR / "manifest.json"

# A module script must be served with a JavaScript type; not every Python maps .mjs.
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("text/javascript", ".js")


@lru_cache(maxsize=256)
def _digest(path: str) -> str:
    return hashlib.sha256((STATIC_DIR / path).read_bytes()).hexdigest()[:12]


def static_url(path: str) -> str:
    """`/static/<path>?v=<content hash>`: a new file is a new URL, so it may be cached long."""
    return f"/static/{path}?v={_digest(path)}"


def manifest() -> list[dict[str, Any]]:
    files: list[dict[str, Any]] = jsonparse.loads(MANIFEST.read_bytes())["files"]
    return files


def vendor_file(package: str) -> str:
    """The path under static/ of a pinned third-party file, by npm package name."""
    for entry in manifest():
        if entry["package"] == package:
            return f"vendor/{entry['file']}"
    raise KeyError(package)
