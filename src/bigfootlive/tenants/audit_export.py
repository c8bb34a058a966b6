"""Export of a tenant's audit trail as CSV or JSON Lines, streamed in keyset-paginated chunks.

Each chunk is one query on a connection of its own (`Database.reads`), so a slow download holds
no connection between chunks and the process never holds more than one chunk of rows.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

import orjson
from sqlalchemy import Row, and_, or_, select

from bigfootlive.authz.scoping import scoped
from bigfootlive.db import Database
from bigfootlive.errors import Unprocessable
from bigfootlive.models import AuditRecord

ExportFormat = Literal["csv", "jsonl"]
CHUNK_SIZE = 500
FIELDS = (
    "id",
    "created_at",
    "action",
    "result",
    "actor_id",
    "target_type",
    "target_id",
    "ip",
    "user_agent",
    "request_id",
    "details",
)
_COLUMNS = [getattr(AuditRecord, name) for name in FIELDS]
MEDIA_TYPES: dict[ExportFormat, str] = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
}


@dataclasses.dataclass(frozen=True, slots=True)
class AuditFilter:
    """The filters of the audit list and its export (all optional, combined with AND)."""

    actor_id: uuid.UUID | None = None
    action: str | None = None
    since: dt.datetime | None = None  # inclusive
    until: dt.datetime | None = None  # exclusive
    ip: str | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise Unprocessable(
                    f"`{name}` needs a time zone (e.g. 2026-12-01T00:00:00Z)",
                    code="invalid_filter",
                    field=name,
                )
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise Unprocessable(
                "`until` must be after `since`", code="invalid_filter", field="until"
            )


def _select(tenant_id: uuid.UUID, flt: AuditFilter) -> Any:
    stmt = scoped(select(*_COLUMNS), AuditRecord, tenant_id)
    if flt.actor_id is not None:
        stmt = stmt.where(AuditRecord.actor_id == flt.actor_id)
    if flt.action:
        stmt = stmt.where(AuditRecord.action == flt.action)
    if flt.since is not None:
        stmt = stmt.where(AuditRecord.created_at >= flt.since)
    if flt.until is not None:
        stmt = stmt.where(AuditRecord.created_at < flt.until)
    if flt.ip:
        stmt = stmt.where(AuditRecord.ip == flt.ip)
    return stmt


async def chunks(
    db: Database, tenant_id: uuid.UUID, flt: AuditFilter, *, size: int = CHUNK_SIZE
) -> AsyncIterator[Sequence[Row[Any]]]:
    """The matching records, oldest first, `size` at a time (keyset on (created_at, id))."""
    last: tuple[dt.datetime, uuid.UUID] | None = None
    while True:
        stmt = _select(tenant_id, flt)
        if last is not None:
            when, last_id = last
            stmt = stmt.where(
                or_(
                    AuditRecord.created_at > when,
                    and_(AuditRecord.created_at == when, AuditRecord.id > last_id),
                )
            )
        stmt = stmt.order_by(AuditRecord.created_at, AuditRecord.id).limit(size)
        async with db.reads() as conn:
            rows = (await conn.execute(stmt)).all()
        if rows:
            yield rows
        if len(rows) < size:
            return
        last = (rows[-1].created_at, rows[-1].id)


def _plain(row: Row[Any]) -> dict[str, Any]:
    out = dict(row._mapping)
    out["id"] = str(out["id"])
    out["actor_id"] = None if out["actor_id"] is None else str(out["actor_id"])
    out["created_at"] = out["created_at"].isoformat()
    return out


def _csv_cell(value: Any) -> str:
    text = "" if value is None else value if isinstance(value, str) else str(value)
    # Spreadsheets run cells that start with these as formulas.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def render_csv(rows: Sequence[Row[Any]], *, header: bool) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    if header:
        writer.writerow(FIELDS)
    for row in rows:
        plain = _plain(row)
        plain["details"] = orjson.dumps(plain["details"]).decode()
        writer.writerow([_csv_cell(plain[name]) for name in FIELDS])
    return buf.getvalue().encode()


def render_jsonl(rows: Sequence[Row[Any]]) -> bytes:
    return b"".join(orjson.dumps(_plain(row)) + b"\n" for row in rows)


async def export(
    db: Database, tenant_id: uuid.UUID, flt: AuditFilter, fmt: ExportFormat
) -> AsyncIterator[bytes]:
    """The file's bytes, one chunk of records at a time (a CSV starts with its header)."""
    if fmt == "csv":
        yield render_csv((), header=True)
    async for rows in chunks(db, tenant_id, flt):
        yield render_csv(rows, header=False) if fmt == "csv" else render_jsonl(rows)
