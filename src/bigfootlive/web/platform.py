"""The platform console (issue 16) under `/platform`: platform stats with charts and the media
server's health, tenants (list, create, rename, deactivate and activate), event containers
(running, per node) and jobs (queues, dead letters: retry, discard).

Platform admins only: anyone else signed in gets 404 (the console does not say it exists).
Every action calls the service the platform API calls, with its audit; deactivating or
activating a tenant asks for a confirmation and a recent verification (step-up), as
`POST /api/platform/tenants/{id}/deactivate` does; discarding a dead letter asks for a
confirmation."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from pydantic import ValidationError
from starlette.responses import Response

from bigfootlive.analytics import series
from bigfootlive.analytics import service as analytics
from bigfootlive.authz.scoping import act_for_platform
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.containers import service as containers
from bigfootlive.db import utcnow
from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.errors import BigfootError, NotFound
from bigfootlive.jobs import service as jobs
from bigfootlive.routing import JsonRoute
from bigfootlive.streaming.managed.runner import ready_status
from bigfootlive.tenants import platform as tenants
from bigfootlive.tenants import service as tenant_service
from bigfootlive.tenants.schemas import PlatformTenantCreate, PlatformTenantUpdate
from bigfootlive.web.guard import signed_in
from bigfootlive.web.render import page, redirect
from bigfootlive.web.security import check_csrf
from bigfootlive.web.session import BrowserSubject
from bigfootlive.web.stepup import step_up_needed

PAGE_SIZE = 25

router = APIRouter(
    prefix="/platform",
    tags=["web"],
    route_class=JsonRoute,
    include_in_schema=False,
    dependencies=[Depends(check_csrf)],
)


async def platform_admin(request: Request, subject: BrowserSubject) -> AuthSubject | None:
    """The platform admin, None when signed out (each handler's `signed_in` then sends the
    browser to sign in, once FastAPI has read the request, as the other consoles do); 404 for
    everyone else."""
    if subject is None:
        return None
    if not subject.is_platform_admin:
        raise NotFound("Page not found", code="not_found")
    act_for_platform("platform console")
    return subject


Admin = Annotated[AuthSubject | None, Depends(platform_admin)]


def chart(days: list[series.Day], fields: dict[str, str]) -> dict[str, object]:
    """What `charts.mjs` draws: x as epoch seconds, one series per field (label: values)."""
    return {
        "x": [int(dt.datetime.combine(d.day, dt.time(), tzinfo=dt.UTC).timestamp()) for d in days],
        "series": [
            {"label": label, "values": [getattr(d, field) for d in days]}
            for field, label in fields.items()
        ],
    }


@router.get("")
async def overview(request: Request, admin: Admin, state: State, session: ReadSession) -> Response:
    signed_in(admin)
    stats = await analytics.platform_stats(state, session)
    days = await series.daily(session, None, 14, utcnow())
    _, media = await ready_status(state.settings)
    return page(
        request,
        "platform/overview.html",
        {
            "stats": stats,
            "days": days,
            "watch_chart": chart(days, {"minutes_watched": "Minutes watched"}),
            "compute_chart": chart(days, {"container_seconds": "Container-seconds"}),
            "media": media,
            "media_server": state.settings.media_server,
        },
    )


# ---------------------------------------------------------------- tenants


async def _tenant_list(
    request: Request,
    session: ReadSession,
    q: str | None,
    cursor: str | None,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    query = (q or "").strip() or None
    items, next_cursor = await tenants.list_tenants(
        session, query=query, cursor=cursor, limit=PAGE_SIZE
    )
    next_url = None
    if next_cursor is not None:
        params = {"cursor": next_cursor, **({"q": query} if query else {})}
        next_url = f"/platform/tenants?{urlencode(params)}"
    context = {
        "tenants": items,
        "q": query or "",
        "next_url": next_url,
        "paged": cursor is not None,
        "form": form or {},
        "error": error,
    }
    return page(request, "platform/tenants.html", context, status)


@router.get("/tenants")
async def tenant_list(
    request: Request,
    admin: Admin,
    session: ReadSession,
    q: Annotated[str | None, Query(max_length=100)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    signed_in(admin)
    return await _tenant_list(request, session, q, cursor)


@router.post("/tenants")
async def tenant_create(
    request: Request,
    admin: Admin,
    session: DbSession,
    meta: Meta,
    slug: Annotated[str, Form(max_length=63)],
    name: Annotated[str, Form(max_length=200)],
) -> Response:
    admin = signed_in(admin)
    form = {"slug": slug, "name": name}
    try:
        body = PlatformTenantCreate(slug=slug.strip(), name=name.strip())
        created = await tenants.create(session, meta, admin.user_id, body)
    except ValidationError:
        error = "Give the tenant a slug (letters, digits, dashes) and a name."
        return await _tenant_list(request, session, None, None, form, error, 422)
    except BigfootError as exc:
        await session.rollback()
        return await _tenant_list(request, session, None, None, form, exc.message, exc.status_code)
    return redirect(request, f"/platform/tenants/{created.id}")


@router.get("/tenants/{tenant_id}")
async def tenant_page(
    request: Request, tenant_id: uuid.UUID, admin: Admin, session: ReadSession
) -> Response:
    signed_in(admin)
    return page(request, "platform/tenant.html", {"tenant": await tenants.get(session, tenant_id)})


@router.post("/tenants/{tenant_id}")
async def tenant_rename(
    request: Request,
    tenant_id: uuid.UUID,
    admin: Admin,
    session: DbSession,
    meta: Meta,
    name: Annotated[str, Form(max_length=200)],
) -> Response:
    admin = signed_in(admin)
    try:
        body = PlatformTenantUpdate(name=name.strip())
    except ValidationError:
        tenant = await tenants.get(session, tenant_id)
        context = {"tenant": tenant, "error": "Give the tenant a name."}
        return page(request, "platform/tenant.html", context, 422)
    await tenants.rename(session, meta, admin.user_id, tenant_id, body)
    return redirect(request, f"/platform/tenants/{tenant_id}")


_ACTIONS = {"deactivate": False, "activate": True}


@router.get("/tenants/{tenant_id}/{action}")
async def tenant_confirm(
    request: Request,
    tenant_id: uuid.UUID,
    action: str,
    admin: Admin,
    session: ReadSession,
) -> Response:
    """The confirmation of a (de)activation: what it does, and the button."""
    signed_in(admin)
    if action not in _ACTIONS:
        raise NotFound("Page not found", code="not_found")
    tenant = await tenants.get(session, tenant_id)
    return page(request, "platform/tenant_confirm.html", {"tenant": tenant, "action": action})


@router.post("/tenants/{tenant_id}/{action}")
async def tenant_set_active(
    request: Request,
    tenant_id: uuid.UUID,
    action: str,
    admin: Admin,
    state: State,
    session: DbSession,
    meta: Meta,
) -> Response:
    admin = signed_in(admin)
    if action not in _ACTIONS:
        raise NotFound("Page not found", code="not_found")
    tenant = await tenant_service.get_tenant(session, tenant_id)
    if tenant is None:
        raise tenants.not_found()
    back = f"/platform/tenants/{tenant_id}/{action}"
    refused = await step_up_needed(request, state, session, meta, admin, back)
    if refused is not None:
        return refused
    await tenant_service.set_active(
        state, session, meta, tenant, _ACTIONS[action], actor_id=admin.user_id
    )
    return redirect(request, f"/platform/tenants/{tenant_id}")


# ---------------------------------------------------------------- containers


@router.get("/containers")
async def container_list(
    request: Request,
    admin: Admin,
    state: State,
    session: ReadSession,
    stopped: bool = False,
) -> Response:
    admin = signed_in(admin)
    stats = await containers.container_stats(state, session, admin, include_stopped=stopped)
    by_node: dict[str, list[object]] = defaultdict(list)
    for item in stats.items:
        by_node[item.node or "(no node)"].append(item)
    return page(
        request,
        "platform/containers.html",
        {"stats": stats, "by_node": dict(sorted(by_node.items())), "stopped": stopped},
    )


@router.get("/containers/{event_id}/restart")
async def container_restart_confirm(
    request: Request, event_id: uuid.UUID, admin: Admin, state: State, session: ReadSession
) -> Response:
    admin = signed_in(admin)
    stats = await containers.container_stats(state, session, admin, include_stopped=True)
    found = next((c for c in stats.items if c.event_id == event_id), None)
    if found is None:
        raise NotFound("No container for this event", code="container_not_found")
    return page(request, "platform/container_restart.html", {"container": found})


@router.post("/containers/{event_id}/restart")
async def container_restart(
    request: Request, event_id: uuid.UUID, admin: Admin, session: DbSession, meta: Meta
) -> Response:
    admin = signed_in(admin)
    await containers.request_restart(session, meta, admin, event_id)
    return redirect(request, "/platform/containers?restarted=1")


# ---------------------------------------------------------------- jobs


@router.get("/jobs")
async def job_list(
    request: Request,
    admin: Admin,
    state: State,
    session: ReadSession,
    task: Annotated[str | None, Query(max_length=100)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    signed_in(admin)
    stats = await jobs.stats(session, state.jobs)
    dead, next_cursor = await jobs.list_dead(
        session, task=task or None, cursor=cursor, limit=PAGE_SIZE
    )
    next_url = None
    if next_cursor is not None:
        params = {"cursor": next_cursor, **({"task": task} if task else {})}
        next_url = f"/platform/jobs?{urlencode(params)}"
    context = {"stats": stats, "dead": dead, "task": task or "", "next_url": next_url}
    return page(request, "platform/jobs.html", context)


@router.post("/jobs/dead/{dead_id}/retry")
async def job_retry(
    request: Request,
    dead_id: uuid.UUID,
    admin: Admin,
    state: State,
    session: DbSession,
    meta: Meta,
) -> Response:
    admin = signed_in(admin)
    await jobs.retry_dead(session, state.jobs, meta, admin, dead_id)
    return redirect(request, "/platform/jobs?retried=1")


@router.get("/jobs/dead/{dead_id}/discard")
async def job_discard_confirm(
    request: Request, dead_id: uuid.UUID, admin: Admin, session: ReadSession
) -> Response:
    signed_in(admin)
    found = await jobs.get_dead(session, dead_id)
    return page(request, "platform/job_discard.html", {"job": found})


@router.post("/jobs/dead/{dead_id}/discard")
async def job_discard(
    request: Request, dead_id: uuid.UUID, admin: Admin, session: DbSession, meta: Meta
) -> Response:
    admin = signed_in(admin)
    await jobs.discard_dead(session, meta, admin, dead_id)
    return redirect(request, "/platform/jobs")
