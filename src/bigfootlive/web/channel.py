"""The viewer's directory pages: a tenant's channel (live now, upcoming, past events with their
recordings) and a user's page with follow and unfollow.

The channel shows what `events.channel.channel_events` lets the visitor see (the watch page's
own rule, `events.access.can_view`); a user's page is the profile and follows of `GET/POST/DELETE
/api/users/{id}[/follow]` (`users.service`: signed-in members of the same tenant only)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from bigfootlive.authz.scoping import tenant_scope
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.containers import repository as recordings_repo
from bigfootlive.deps import DbSession, ReadSession
from bigfootlive.errors import BigfootError, NotFound
from bigfootlive.events import channel, crud
from bigfootlive.events.schemas import EventStatus
from bigfootlive.models import Event
from bigfootlive.routing import JsonRoute
from bigfootlive.tenants import service as tenants
from bigfootlive.users import service as users
from bigfootlive.web.guard import signed_in
from bigfootlive.web.render import page, redirect
from bigfootlive.web.security import check_csrf
from bigfootlive.web.session import BrowserSubject

router = APIRouter(
    tags=["web"], route_class=JsonRoute, include_in_schema=False, dependencies=[Depends(check_csrf)]
)

ON_AIR = [EventStatus.LIVE, EventStatus.RECONNECTING]
UPCOMING = [EventStatus.SCHEDULED, EventStatus.READY]
PAST = [EventStatus.ENDED]
LIMIT = 20


@router.get("/c/{slug}")
async def channel_page(
    slug: str, request: Request, subject: BrowserSubject, session: ReadSession
) -> Response:
    tenant = await tenants.get_tenant_by_slug(session, slug[:63])
    if tenant is None or not tenant.is_active:
        raise NotFound("No such channel", code="channel_not_found")
    sections: dict[str, list[Event]] = {}
    for name, statuses in (("live", ON_AIR), ("upcoming", UPCOMING), ("past", PAST)):
        sections[name] = await channel.channel_events(
            session, subject, tenant, statuses=statuses, limit=LIMIT
        )
    with tenant_scope(tenant.id):
        vods = await recordings_repo.ready_recordings(
            session, tenant.id, [e.id for e in sections["past"]]
        )
    return page(request, "channel.html", {"tenant": tenant, **sections, "vods": vods})


async def _user_context(
    session: AsyncSession, subject: AuthSubject, user_id: uuid.UUID
) -> dict[str, object]:
    profile = await users.profile(session, subject, user_id)
    events: dict[str, object] = {}
    for name, statuses in (("live", ON_AIR), ("upcoming", UPCOMING), ("past", PAST)):
        rows = await crud.list_events(
            session, subject, statuses=statuses, owner_id=user_id, cursor=None, limit=LIMIT
        )
        events[name] = list(rows[:LIMIT])
    return {"profile": profile, **events}


@router.get("/u/{user_id}")
async def user_page(
    user_id: uuid.UUID, request: Request, subject: BrowserSubject, session: ReadSession
) -> Response:
    me = signed_in(subject)
    context = await _user_context(session, me, user_id)
    return page(request, "user.html", {**context, "me": me.user_id == user_id})


async def _follow(
    request: Request,
    subject: BrowserSubject,
    session: DbSession,
    user_id: uuid.UUID,
    *,
    follow: bool,
) -> Response:
    me = signed_in(subject)
    error = None
    try:
        if follow:
            await users.follow(session, me, user_id)
        else:
            await users.unfollow(session, me, user_id)
    except BigfootError as exc:
        if exc.status_code == 404:
            raise
        await session.rollback()
        error = exc
    profile = await users.profile(session, me, user_id)
    if request.headers.get("hx-request"):
        message = None if error is None else error.message
        context = {"profile": profile, "error": message, "me": False}
        status = 200 if error is None else error.status_code
        return page(request, "viewer/follow.html", context, status)
    if error is not None:
        raise error
    return redirect(request, f"/u/{user_id}")


@router.post("/u/{user_id}/follow")
async def follow(
    user_id: uuid.UUID, request: Request, subject: BrowserSubject, session: DbSession
) -> Response:
    """Follow (as `POST /api/users/{id}/follow`); htmx swaps the follow box."""
    return await _follow(request, subject, session, user_id, follow=True)


@router.post("/u/{user_id}/unfollow")
async def unfollow(
    user_id: uuid.UUID, request: Request, subject: BrowserSubject, session: DbSession
) -> Response:
    """Unfollow (as `DELETE /api/users/{id}/follow`)."""
    return await _follow(request, subject, session, user_id, follow=False)
