"""The watch page's chat moderation: delete a message, time out or ban its author, slow mode.

The page's script calls these with the cookie session and the CSRF token; each calls the chat
moderation service `DELETE /api/events/{id}/chat/{message_id}`, `POST .../chat/timeouts/{user}`,
`PUT .../chat/bans/{user}` and `PATCH .../chat/room` call, so who may moderate (the event's
owner, the tenant's moderators and admins, platform admins) is `chat.rules.can_moderate`'s to
say: anyone else gets 403 `not_moderator`, a viewer who may not see the event 404. Viewers hear
of every change over the event's live channel, as with the API.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from bigfootlive.authz.subject import AuthSubject
from bigfootlive.chat import moderation
from bigfootlive.chat.schemas import BanIn, RoomSettingsPatch, TimeoutIn
from bigfootlive.deps import DbSession, Meta, State
from bigfootlive.errors import Unauthorized
from bigfootlive.routing import JsonRoute
from bigfootlive.web.render import finish
from bigfootlive.web.security import check_csrf
from bigfootlive.web.session import BrowserSubject

router = APIRouter(
    prefix="/watch/{event_id}/chat",
    tags=["web"],
    route_class=JsonRoute,
    include_in_schema=False,
    dependencies=[Depends(check_csrf)],
)


class SlowModeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: int = Field(ge=0, le=3600)


def _signed_in(subject: AuthSubject | None) -> AuthSubject:
    if subject is None:
        raise Unauthorized("Sign in to moderate", code="not_authenticated")
    return subject


def _json(request: Request, body: BaseModel | None = None) -> Response:
    if body is None:
        return finish(request, Response(status_code=204))
    return finish(request, Response(body.model_dump_json(), media_type="application/json"))


@router.post("/{message_id}/delete")
async def delete_message(
    event_id: uuid.UUID,
    message_id: uuid.UUID,
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> Response:
    """Authors delete their own messages, moderators any."""
    me = _signed_in(subject)
    await moderation.delete_message(state, session, meta, me, event_id, message_id)
    return _json(request)


@router.post("/timeouts/{user_id}")
async def timeout_user(
    event_id: uuid.UUID,
    user_id: uuid.UUID,
    body: TimeoutIn,
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> Response:
    me = _signed_in(subject)
    await moderation.timeout_user(
        state, session, meta, me, event_id, user_id, body.seconds, body.reason
    )
    return _json(request)


@router.post("/bans/{user_id}")
async def ban_user(
    event_id: uuid.UUID,
    user_id: uuid.UUID,
    body: BanIn,
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> Response:
    me = _signed_in(subject)
    await moderation.ban_user(state, session, meta, me, event_id, user_id, body.reason)
    return _json(request)


@router.post("/slow-mode")
async def slow_mode(
    event_id: uuid.UUID,
    body: SlowModeIn,
    request: Request,
    subject: BrowserSubject,
    state: State,
    session: DbSession,
    meta: Meta,
) -> Response:
    """Slow mode: seconds between two messages of one viewer (0 = off)."""
    me = _signed_in(subject)
    patch = RoomSettingsPatch(slow_mode_seconds=body.seconds)
    room = await moderation.update_room(state, session, meta, me, event_id, patch)
    return _json(request, room)
