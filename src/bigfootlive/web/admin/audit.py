"""The admin console's audit log: the tenant's records newest first with the filters of the
API (actor, action, time, IP), a record's page, and the export of the current filter as CSV or
JSON Lines, streamed by `tenants.audit_export` as `GET /api/tenant/audit/export` (audited the
same way). Tenant admins only (`audit:read_tenant`)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from bigfootlive.audit import AuditAction
from bigfootlive.audit.filters import AuditFilter
from bigfootlive.authz.roles import Permission
from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.errors import BigfootError, NotFound
from bigfootlive.identity import accounts
from bigfootlive.kit.pagination import page_of
from bigfootlive.tenants import audit_export
from bigfootlive.web.admin.common import admin_router, message_of
from bigfootlive.web.guard import console_admin
from bigfootlive.web.render import finish, page
from bigfootlive.web.session import BrowserSubject

PAGE_SIZE = 50
ACTIONS = sorted(a.value for a in AuditAction)

router = admin_router()
Text = Annotated[str, Query(max_length=64)]


class FilterForm:
    """The filter form's values as typed, and the `AuditFilter` they mean. Times without a zone
    (the form's `datetime-local`) are UTC."""

    def __init__(self, actor: str, action: str, since: str, until: str, ip: str) -> None:
        self.values = {"actor": actor, "action": action, "since": since, "until": until, "ip": ip}
        self.values = {k: v.strip() for k, v in self.values.items()}

    def query(self) -> dict[str, str]:
        return {k: v for k, v in self.values.items() if v}

    def parse(self) -> AuditFilter:
        v = self.values
        try:
            actor = uuid.UUID(v["actor"]) if v["actor"] else None
        except ValueError:
            raise BigfootError("The actor must be a member's id", code="invalid_filter") from None
        return AuditFilter(
            actor_id=actor,
            action=v["action"] or None,
            since=_time(v["since"], "since"),
            until=_time(v["until"], "until"),
            ip=v["ip"] or None,
        )


def _time(value: str, name: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BigfootError(
            f"`{name}` is not a date and time (e.g. 2026-12-01T09:30)", code="invalid_filter"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@router.get("/audit")
async def audit_log(
    request: Request,
    subject: BrowserSubject,
    session: ReadSession,
    actor: Text = "",
    action: Text = "",
    since: Text = "",
    until: Text = "",
    ip: Text = "",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    admin = console_admin(subject, Permission.AUDIT_READ_TENANT)
    form = FilterForm(actor, action, since, until, ip)
    context: dict[str, Any] = {"form": form.values, "actions": ACTIONS, "records": []}
    try:
        flt = form.parse()
    except BigfootError as exc:
        return page(request, "admin/audit.html", {**context, "error": message_of(exc)}, 422)
    rows = await accounts.list_audit(
        session, admin, scope="tenant", filters=flt, cursor=cursor, limit=PAGE_SIZE
    )
    items, next_cursor = page_of(rows, PAGE_SIZE)
    query = form.query()
    suffix = f"?{urlencode(query)}" if query else ""
    context.update(
        records=items,
        first_url=f"/admin/audit{suffix}",
        next_url=(
            f"/admin/audit?{urlencode({**query, 'cursor': next_cursor})}" if next_cursor else None
        ),
        paged=cursor is not None,
        csv_url=f"/admin/audit/export?{urlencode({**query, 'format': 'csv'})}",
        jsonl_url=f"/admin/audit/export?{urlencode({**query, 'format': 'jsonl'})}",
        filtered=bool(query),
    )
    return page(request, "admin/audit.html", context)


@router.get("/audit/export")
async def export(
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
    format: Annotated[audit_export.ExportFormat, Query()] = "csv",
    actor: Text = "",
    action: Text = "",
    since: Text = "",
    until: Text = "",
    ip: Text = "",
) -> Response:
    """The records matching the filter, oldest first, as a download (no size limit: streamed)."""
    admin = console_admin(subject, Permission.AUDIT_READ_TENANT)
    flt = FilterForm(actor, action, since, until, ip).parse()
    filename = await audit_export.start_export(
        session, meta, actor_id=admin.user_id, tenant_id=admin.tenant_id, flt=flt,
        fmt=format, now=state.clock(),
    )  # fmt: skip
    response = StreamingResponse(
        audit_export.export(state.db, admin.tenant_id, flt, format),
        media_type=audit_export.MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
    return finish(request, response)


@router.get("/audit/{record_id}")
async def record(
    request: Request, record_id: uuid.UUID, subject: BrowserSubject, session: ReadSession
) -> Response:
    admin = console_admin(subject, Permission.AUDIT_READ_TENANT)
    found = await audit_export.get_record(session, admin.tenant_id, record_id)
    if found is None:
        raise NotFound("No such audit record", code="audit_record_not_found")
    return page(request, "admin/audit_record.html", {"record": found})
