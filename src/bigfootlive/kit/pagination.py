"""Keyset (cursor) pagination on (created_at, id): stable under concurrent inserts."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from bigfootlive.errors import BadRequest
from bigfootlive.kit import jsonparse

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(created_at: dt.datetime, id_: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(id_)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, id_ = jsonparse.loads(raw)
        when = dt.datetime.fromisoformat(created)
        if when.tzinfo is None:
            raise ValueError("naive")
        return when, uuid.UUID(id_)
    except (ValueError, TypeError) as exc:
        raise BadRequest("The cursor is not valid", code="invalid_cursor") from exc


S = TypeVar("S", bound=Select[*tuple[Any, ...]])


def paginate(
    stmt: S,
    created_col: InstrumentedAttribute[dt.datetime],
    id_col: InstrumentedAttribute[uuid.UUID],
    *,
    cursor: str | None,
    limit: int,
    newest_first: bool = True,
) -> S:
    """Apply the cursor and fetch one row more than `limit` to know whether a next page exists."""
    if cursor:
        when, last_id = decode_cursor(cursor)
        if newest_first:
            stmt = stmt.where(or_(created_col < when, and_(created_col == when, id_col < last_id)))
        else:
            stmt = stmt.where(or_(created_col > when, and_(created_col == when, id_col > last_id)))
    order = (created_col.desc(), id_col.desc()) if newest_first else (created_col, id_col)
    return stmt.order_by(*order).limit(limit + 1)


def page_of(rows: Sequence[Any], limit: int) -> tuple[list[Any], str | None]:
    """Split the `limit + 1` rows from `paginate` into a page and the next cursor."""
    items = list(rows[:limit])
    if len(rows) > limit and items:
        last = items[-1]
        return items, encode_cursor(last.created_at, last.id)
    return items, None
