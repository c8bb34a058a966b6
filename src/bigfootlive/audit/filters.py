"""The filters of the audit list (`GET /api/auth/audit`) and its export
(`GET /api/tenant/audit/export`): one definition, so both answer the same records."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any, TypeVar

from sqlalchemy import Select

from bigfootlive.errors import Unprocessable
from bigfootlive.models import AuditRecord

S = TypeVar("S", bound=Select[*tuple[Any, ...]])


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

    def apply(self, stmt: S) -> S:
        """`stmt` (over `audit_records`) restricted to the matching records."""
        if self.actor_id is not None:
            stmt = stmt.where(AuditRecord.actor_id == self.actor_id)
        if self.action:
            stmt = stmt.where(AuditRecord.action == self.action)
        if self.since is not None:
            stmt = stmt.where(AuditRecord.created_at >= self.since)
        if self.until is not None:
            stmt = stmt.where(AuditRecord.created_at < self.until)
        if self.ip:
            stmt = stmt.where(AuditRecord.ip == self.ip)
        return stmt
