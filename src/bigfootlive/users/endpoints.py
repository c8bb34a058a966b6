from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from bigfootlive.authz.deps import CurrentSubject
from bigfootlive.deps import DbSession, Meta, ReadSession
from bigfootlive.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from bigfootlive.routing import JsonRoute
from bigfootlive.users import service
from bigfootlive.users.schemas import FollowOut, FollowState, ProfileOut, ProfileUpdate

router = APIRouter(prefix="/api/users", tags=["users"], route_class=JsonRoute)

Cursor = Annotated[str | None, Query(max_length=200)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.get("/{user_id}")
async def get_profile(
    user_id: uuid.UUID, subject: CurrentSubject, session: ReadSession
) -> ProfileOut:
    return await service.profile(session, subject, user_id)


@router.put("/{user_id}")
async def update_profile(
    user_id: uuid.UUID, body: ProfileUpdate, subject: CurrentSubject, session: DbSession, meta: Meta
) -> ProfileOut:
    return await service.update_profile(session, meta, subject, user_id, body)


@router.post("/{user_id}/follow")
async def follow(user_id: uuid.UUID, subject: CurrentSubject, session: DbSession) -> FollowState:
    following, followers = await service.follow(session, subject, user_id)
    return FollowState(following=following, followers=followers)


@router.delete("/{user_id}/follow")
async def unfollow(user_id: uuid.UUID, subject: CurrentSubject, session: DbSession) -> FollowState:
    following, followers = await service.unfollow(session, subject, user_id)
    return FollowState(following=following, followers=followers)


@router.get("/{user_id}/followers")
async def followers(
    user_id: uuid.UUID,
    subject: CurrentSubject,
    session: ReadSession,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[FollowOut]:
    items, next_cursor = await service.follow_list(
        session, subject, user_id, followers=True, cursor=cursor, limit=limit
    )
    return Page[FollowOut](items=items, next_cursor=next_cursor)


@router.get("/{user_id}/following")
async def following(
    user_id: uuid.UUID,
    subject: CurrentSubject,
    session: ReadSession,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[FollowOut]:
    items, next_cursor = await service.follow_list(
        session, subject, user_id, followers=False, cursor=cursor, limit=limit
    )
    return Page[FollowOut](items=items, next_cursor=next_cursor)
