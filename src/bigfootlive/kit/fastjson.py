"""One serialization pass for hot reads: orjson straight to the response's bytes.

An endpoint that returns a Pydantic model pays for validating it, dumping it to Python objects
and encoding those (`json.dumps`). A hot read builds plain dicts (UUIDs and aware datetimes as
they come from the database) and returns `JsonBytes(dumps(...))`, declaring its model with
`response_model=` for the documentation. The output is the JSON Pydantic gives for the same
values: UUIDs as strings, UTC datetimes in ISO 8601 with `Z`.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.responses import Response


def _default(value: Any) -> Any:
    # orjson knows `uuid.UUID` itself, not its subclasses (asyncpg returns its own).
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=orjson.OPT_UTC_Z)


class JsonBytes(Response):
    """A response whose body is already JSON."""

    media_type = "application/json"
