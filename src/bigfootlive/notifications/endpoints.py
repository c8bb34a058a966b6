from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from bigfootlive.authz.deps import CurrentSubject
from bigfootlive.deps import DbSession, ReadSession, State
from bigfootlive.notifications import service
from bigfootlive.notifications.schemas import Preferences, PreferencesUpdate, Unsubscribed
from bigfootlive.routing import JsonRoute

router = APIRouter(prefix="/api/notifications", tags=["notifications"], route_class=JsonRoute)

Token = Annotated[str, Query(min_length=10, max_length=300)]


@router.get("/preferences")
async def get_preferences(subject: CurrentSubject, session: ReadSession) -> Preferences:
    return await service.preferences(session, subject)


@router.put("/preferences")
async def update_preferences(
    body: PreferencesUpdate, subject: CurrentSubject, session: DbSession
) -> Preferences:
    return await service.update_preferences(session, subject, body)


@router.get("/unsubscribe", response_class=HTMLResponse)
async def unsubscribe_page(token: Token, state: State) -> HTMLResponse:
    """The emailed link: a confirmation page. Only the POST unsubscribes, so link scanners
    that prefetch URLs in mail cannot unsubscribe anyone."""
    service.check_unsubscribe_token(state, token)
    action = html.escape(f"/api/notifications/unsubscribe?token={token}", quote=True)
    return HTMLResponse(
        "<!doctype html><title>Unsubscribe</title>"
        f'<form method="post" action="{action}"><p>Stop these emails?</p>'
        '<button type="submit">Unsubscribe</button></form>'
    )


@router.post("/unsubscribe")
async def unsubscribe_one_click(token: Token, state: State, session: DbSession) -> Unsubscribed:
    """RFC 8058 one-click unsubscribe (mail clients POST to the same link)."""
    return await service.unsubscribe(state, session, token)
