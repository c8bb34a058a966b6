"""The one JSON parser for what arrives from outside: request bodies, callbacks, IdP responses.

The standard library's `json.loads` recurses once per nesting level, so a body of 10,000 `[`
raises RecursionError (a 500) instead of a parse error. pydantic-core's parser (jiter, which
pydantic already uses for `model_validate_json` and WebSocket frames) stops at a fixed nesting
depth with a ValueError, and is faster. Everything that parses JSON by hand goes through `loads`;
FastAPI's own body parsing is routed here by `bigfootlive.routing.JsonRoute`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic_core import from_json

# jiter's own limit: deeper documents are refused (a bit over 200 levels of arrays or objects).
MAX_DEPTH = 200
_BOM = b"\xef\xbb\xbf"
_POSITION = re.compile(r" at line (\d+) column (\d+)$")


class MalformedJson(json.JSONDecodeError):
    """Not JSON, not UTF-8, or nested deeper than MAX_DEPTH.

    A `json.JSONDecodeError`, so code that already catches it (and FastAPI, which turns it into a
    `json_invalid` validation error: 400 `malformed_json`) handles this one too.
    """


def loads(data: str | bytes | bytearray) -> Any:
    """Parse `data` like `json.loads`, refusing deep nesting; raises MalformedJson."""
    if isinstance(data, bytes | bytearray) and data.startswith(_BOM):
        data = data[len(_BOM) :]  # json.loads tolerates a UTF-8 byte order mark in bytes too
    try:
        return from_json(data)
    except ValueError as exc:
        raise _malformed(str(exc), data) from None


def _malformed(message: str, data: str | bytes | bytearray) -> MalformedJson:
    doc = data if isinstance(data, str) else bytes(data).decode("utf-8", "replace")
    found = _POSITION.search(message)
    pos = 0
    if found:
        line, column = int(found.group(1)), int(found.group(2))
        start = 0
        for _ in range(line - 1):
            start = doc.find("\n", start) + 1
        pos = min(len(doc), start + max(column - 1, 0))
        message = message[: found.start()]
    return MalformedJson(message, doc, pos)
