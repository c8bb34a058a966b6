"""A tenant's channel: its events as one viewer may see them (live now, upcoming, past).

The visibility rules are `access.can_view`'s: anonymous visitors and members of other tenants
see the tenant's public events; its members also its tenant-only events and their own private
ones; its moderators and admins (and platform admins) every event. Knows nothing of HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.authz.roles import Role
from bigfootlive.authz.scoping import scoped, tenant_scope
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.events import repository as repo
from bigfootlive.events.access import can_view
from bigfootlive.events.schemas import EventStatus, Visibility
from bigfootlive.models import Event, Tenant


def _member(viewer: AuthSubject | None, tenant: Tenant) -> AuthSubject | None:
    """The viewer when it belongs to the tenant (or is a platform admin), else None."""
    if viewer is not None and (viewer.is_platform_admin or viewer.tenant_id == tenant.id):
        return viewer
    return None


async def channel_events(
    session: AsyncSession,
    viewer: AuthSubject | None,
    tenant: Tenant,
    *,
    statuses: Sequence[EventStatus],
    limit: int,
) -> list[Event]:
    """The tenant's events in `statuses` that `viewer` (None = anonymous) may see, newest
    first, at most `limit`."""
    member = _member(viewer, tenant)
    if member is not None:
        stmt = repo.page_query(
            tenant_id=tenant.id,
            statuses=statuses,
            owner_id=None,
            viewer_id=member.user_id,
            sees_all_in_tenant=member.is_platform_admin or member.role >= Role.MODERATOR,
        )
    else:
        stmt = scoped(select(Event), Event, tenant.id).where(
            Event.visibility == Visibility.PUBLIC.value,
            Event.status.in_([s.value for s in statuses]),
        )
    stmt = stmt.order_by(Event.created_at.desc(), Event.id.desc()).limit(limit)
    with tenant_scope(tenant.id):  # the channel's rows, whoever looks (row-level security)
        rows = (await session.execute(stmt)).scalars().all()
    # the same rule the watch page applies, so the channel never links to a refused page
    return [event for event in rows if can_view(viewer, event)]
