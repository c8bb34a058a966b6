"""Container rules seen from the API: capacity on start, stats and usage, recordings."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.roles import Permission
from bigfootlive.authz.scoping import act_for_platform, platform_scope
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.containers import repository as repo
from bigfootlive.containers.ports import ContainersState
from bigfootlive.containers.schemas import (
    ContainerOut,
    ContainerStatsOut,
    RecordingOut,
    TenantUsage,
)
from bigfootlive.db import utcnow
from bigfootlive.errors import Conflict, Forbidden, NotFound, TooManyRequests
from bigfootlive.events import access
from bigfootlive.events.hooks import Starting
from bigfootlive.kit.request import RequestMeta


class TenantContainerLimit(Conflict):
    code = "tenant_container_limit"
    message = "Your organisation has as many events running as its plan allows; stop one first"


class NodeContainerLimit(TooManyRequests):
    code = "node_container_capacity"
    message = "No compute capacity is free for another live event right now; try again shortly"


async def check_capacity(starting: Starting) -> None:
    """Refuse to arm an event when its tenant, or the node, has no container to spare.
    The events hook EVENT_STARTING (runs inside the start request)."""
    settings, session, event = starting.state.settings, starting.session, starting.event
    tenant_count = await repo.count_armed(session, tenant_id=event.tenant_id, exclude=event.id)
    if tenant_count >= settings.container_max_per_tenant:
        raise TenantContainerLimit(limit=settings.container_max_per_tenant, running=tenant_count)
    with platform_scope("node container capacity"):  # every tenant's containers on the node
        node_count = await repo.count_armed(session, tenant_id=None, exclude=event.id)
    if node_count >= settings.container_max_per_node:
        raise NodeContainerLimit(
            retry_after=int(settings.container_reconcile_interval_seconds * 5) or 1,
            limit=settings.container_max_per_node,
        )


async def container_stats(
    state: ContainersState, session: AsyncSession, subject: AuthSubject, *, include_stopped: bool
) -> ContainerStatsOut:
    if subject.is_platform_admin:
        tenant_id: uuid.UUID | None = None
        act_for_platform("platform container stats")
    elif subject.can(Permission.CONTAINERS_READ_TENANT):
        tenant_id = subject.tenant_id
    else:
        raise Forbidden(code="insufficient_role", required=str(Permission.CONTAINERS_READ_TENANT))
    now = utcnow()
    items = []
    for row, title, status in await repo.list_containers(
        session, tenant_id, include_stopped=include_stopped
    ):
        running = row.state == "running" and row.started_at is not None
        health = (row.worker_state or {}).get("health", {})
        items.append(
            ContainerOut(
                event_id=row.event_id,
                event_title=title,
                event_status=status,
                tenant_id=row.tenant_id,
                runtime=row.runtime,
                node=row.node,
                state=row.state,
                restarts=row.restarts,
                uptime_seconds=round((now - row.started_at).total_seconds(), 3)
                if running and row.started_at is not None
                else 0.0,
                cpu_percent=row.cpu_percent if running else 0.0,
                memory_bytes=row.memory_bytes if running else 0,
                container_seconds=round(row.container_seconds, 3),
                last_heartbeat_at=row.last_heartbeat_at,
                started_at=row.started_at,
                stopped_at=row.stopped_at,
                stop_reason=row.stop_reason,
                health=health.get("health") if isinstance(health, dict) else None,
            )
        )
    usage = [
        TenantUsage(tenant_id=t, container_seconds=round(s, 3), containers=n)
        for t, s, n in await repo.usage_by_tenant(session, tenant_id)
    ]
    manager = state.containers
    return ContainerStatsOut(
        runtime=state.settings.container_runtime,
        node=manager.node if manager is not None else "",
        leader=manager.is_leader if manager is not None else None,
        running=sum(1 for i in items if i.state == "running"),
        items=items,
        usage=usage,
    )


async def recordings_of(
    session: AsyncSession, viewer: AuthSubject | None, event_id: uuid.UUID
) -> list[RecordingOut]:
    """Recordings of an event the viewer may see (404 otherwise, as for the event)."""
    event = await access.get_viewable_event(session, viewer, event_id)
    rows = await repo.recordings_of(session, event.tenant_id, event.id)
    return [RecordingOut.model_validate(r, from_attributes=True) for r in rows]


RESTARTABLE = ("running", "starting", "crashed")


async def request_restart(
    session: AsyncSession, meta: RequestMeta, subject: AuthSubject, event_id: uuid.UUID
) -> None:
    """A platform admin's restart of an event's container, on whatever node it runs: the row
    gets a new handle, which fences the current worker off (its next heartbeat fails and it
    stops, `worker.FencedOff`), and is marked crashed with no backoff, so the manager's next
    reconcile launches a new worker as soon as the old one is gone. Audited."""
    if not subject.is_platform_admin:
        raise Forbidden(code="platform_admin_required")
    act_for_platform("platform container restart")
    row = await repo.get_container(session, event_id)
    if row is None:
        raise NotFound("No container for this event", code="container_not_found")
    if row.state not in RESTARTABLE:
        raise Conflict(
            f"The container is {row.state}: only a running one can be restarted",
            code="container_not_running",
        )
    now = utcnow()
    row.handle = f"restart:{uuid.uuid4().hex[:16]}"
    row.state = "crashed"
    row.stop_reason = "restart_requested"
    row.stopped_at = now
    row.next_restart_at = now
    row.restarts += 1
    row.updated_at = now
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.CONTAINER_RESTART,
        tenant_id=row.tenant_id,
        target_type="event",
        target_id=event_id,
        details={"node": row.node, "restarts": row.restarts},
    )
    await session.flush()
