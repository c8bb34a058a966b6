"""The package's static files (`web/static`), served from memory under `/static`.

The files ship in the package and never change while the server runs, so each is read once (on
first use) with its type, length and a strong ETag; an answer is a dictionary look-up, not a
disk read per request as Starlette's StaticFiles does. A URL carrying the file's content hash
(`assets.static_url`: `?v=<hash>`) names that content forever: `Cache-Control: public,
max-age=31536000, immutable`, the browser never asks again. Any other URL of the file is
revalidated (`no-cache`) against the ETag: `If-None-Match` answers 304 without a body.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import parse_qs

from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from bigfootlive.web.assets import STATIC_DIR

IMMUTABLE = b"public, max-age=31536000, immutable"
REVALIDATE = b"no-cache"
_TEXT = ("text/", "application/javascript", "application/json", "image/svg+xml")


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    version: str  # the content hash of `assets.static_url`'s `?v=`
    etag: bytes
    media_type: bytes


def _load(path: Path) -> StaticFile:
    body = path.read_bytes()
    digest = hashlib.sha256(body).hexdigest()
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if media_type.startswith(_TEXT):
        media_type += "; charset=utf-8"
    return StaticFile(body, digest[:12], f'"{digest[:32]}"'.encode(), media_type.encode())


def _route_path(scope: Scope) -> str:
    """The path below the mount point (Starlette keeps the full path in `path`)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root + "/") else path


class MemoryStaticFiles:
    """An ASGI app for a directory's files, all read once into memory (GET and HEAD)."""

    def __init__(self, directory: Path = STATIC_DIR) -> None:
        self.directory = directory

    @cached_property
    def files(self) -> dict[str, StaticFile]:
        return {
            path.relative_to(self.directory).as_posix(): _load(path)
            for path in sorted(self.directory.rglob("*"))
            if path.is_file()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise HTTPException(404)
        if scope["method"] not in ("GET", "HEAD"):
            raise HTTPException(405, headers={"Allow": "GET, HEAD"})
        found = self.files.get(_route_path(scope).lstrip("/"))
        if found is None:
            raise HTTPException(404)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        cache = IMMUTABLE if query.get("v") == [found.version] else REVALIDATE
        headers = [(b"etag", found.etag), (b"cache-control", cache)]
        if _matches(scope, found.etag):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers += [
            (b"content-type", found.media_type),
            (b"content-length", str(len(found.body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        body = b"" if scope["method"] == "HEAD" else found.body
        await send({"type": "http.response.body", "body": body})


def _matches(scope: Scope, etag: bytes) -> bool:
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            tags = {tag.strip().removeprefix(b"W/") for tag in value.split(b",")}
            return etag in tags or b"*" in tags
    return False
