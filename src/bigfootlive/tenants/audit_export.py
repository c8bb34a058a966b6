"""Export of a tenant's audit trail as CSV or JSON Lines, streamed in keyset-paginated chunks.

Each chunk is one query on a connection of its own (`Database.reads`), so a slow download holds
no connection between chunks and the process never holds more than one chunk of rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

import orjson
from sqlalchemy import Row, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.audit.filters import AuditFilter
from bigfootlive.authz.scoping import scoped
from bigfootlive.db import Database
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import AuditRecord

__all__ = ["AuditFilter", "chunks", "export", "get_record", "start_export"]

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


def _select(tenant_id: uuid.UUID, flt: AuditFilter) -> Any:
    return flt.apply(scoped(select(*_COLUMNS), AuditRecord, tenant_id))


async def chunks(
    db: Database, tenant_id: uuid.UUID, flt: AuditFilter, *, size: int = CHUNK_SIZE
) -> AsyncIterator[Sequence[Row[Any]]]:
    """The matching records, oldest first, `size` at a time (keyset on (created_at, id))."""
    last: tuple[dt.datetime, uuid.UUID] | None = None
    while True:
        stmt = _select(tenant_id, flt)
        if last is not None:
            when, last_id = last
            # A row-value comparison: both databases seek the (tenant_id, created_at) index to
            # it, where the OR of the two cases made SQLite re-read the skipped rows.
            stmt = stmt.where(
                tuple_(AuditRecord.created_at, AuditRecord.id) > tuple_(when, last_id)
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


async def start_export(
    session: AsyncSession,
    meta: RequestMeta,
    *,
    actor_id: uuid.UUID,
    tenant_id: uuid.UUID,
    flt: AuditFilter,
    fmt: ExportFormat,
    now: dt.datetime,
) -> str:
    """Put the export itself on the trail (who exported what; committed with the caller's
    transaction, before the file starts) and name the file. The bytes: `export`."""
    filters = {
        "actor": flt.actor_id,
        "action": flt.action,
        "since": flt.since,
        "until": flt.until,
        "ip": flt.ip,
    }
    await AuditLog(session, meta, actor_id).record(
        AuditAction.TENANT_AUDIT_EXPORT,
        tenant_id=tenant_id,
        details={
            "format": fmt,
            "filters": {k: str(v) for k, v in filters.items() if v is not None},
        },
    )
    return f"audit-{now.strftime('%Y%m%dT%H%M%SZ')}.{fmt}"


async def get_record(
    session: AsyncSession, tenant_id: uuid.UUID, record_id: uuid.UUID
) -> AuditRecord | None:
    """One record of the tenant's trail (another tenant's: None)."""
    stmt = scoped(select(AuditRecord), AuditRecord, tenant_id).where(AuditRecord.id == record_id)
    return (await session.execute(stmt)).scalar_one_or_none()
