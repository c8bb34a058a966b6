"""Public profiles and follows, always within the caller's tenant."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.roles import Permission, Role
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.errors import BadRequest, Forbidden, NotFound
from bigfootlive.identity import repository as identity_repo
from bigfootlive.kit.pagination import encode_cursor
from bigfootlive.kit.request import RequestMeta
from bigfootlive.models import User
from bigfootlive.users import repository as repo
from bigfootlive.users.schemas import FollowOut, ProfileOut, ProfileUpdate


async def _member(session: AsyncSession, subject: AuthSubject, user_id: uuid.UUID) -> User:
    user = await identity_repo.get_user(session, subject.tenant_id, user_id)
    if user is None or not user.is_active:
        raise NotFound("No such user", code="user_not_found")
    return user


async def profile(session: AsyncSession, subject: AuthSubject, user_id: uuid.UUID) -> ProfileOut:
    user = await _member(session, subject, user_id)
    followers, following = await repo.follow_counts(session, user.id)
    return ProfileOut(
        id=user.id,
        display_name=user.display_name,
        bio=user.bio,
        avatar_url=user.avatar_url,
        role=Role(user.role),
        followers=followers,
        following=following,
        is_following=await repo.is_following(session, subject.user_id, user.id),
        created_at=user.created_at,
    )


async def update_profile(
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    user_id: uuid.UUID,
    patch: ProfileUpdate,
) -> ProfileOut:
    user = await _member(session, subject, user_id)
    if user.id != subject.user_id and not subject.can(Permission.PROFILES_EDIT_ANY):
        raise Forbidden("You can only edit your own profile", code="not_profile_owner")
    changes = patch.model_dump(exclude_unset=True, mode="json")
    for field, value in changes.items():
        if value is None and field != "avatar_url":
            continue
        setattr(user, field, value)
    if changes:
        await AuditLog(session, meta, subject.user_id).record(
            AuditAction.USER_PROFILE_UPDATE,
            tenant_id=user.tenant_id,
            target_type="user",
            target_id=user.id,
            details={"fields": sorted(changes)},
        )
    await session.flush()
    return await profile(session, subject, user.id)


async def follow(
    session: AsyncSession, subject: AuthSubject, user_id: uuid.UUID
) -> tuple[bool, int]:
    user = await _member(session, subject, user_id)
    if user.id == subject.user_id:
        raise BadRequest("You cannot follow yourself", code="self_follow")
    await repo.add_follow(session, subject.tenant_id, subject.user_id, user.id)
    await session.flush()
    followers, _ = await repo.follow_counts(session, user.id)
    return True, followers


async def unfollow(
    session: AsyncSession, subject: AuthSubject, user_id: uuid.UUID
) -> tuple[bool, int]:
    user = await _member(session, subject, user_id)
    await repo.remove_follow(session, subject.user_id, user.id)
    followers, _ = await repo.follow_counts(session, user.id)
    return False, followers


async def follow_list(
    session: AsyncSession,
    subject: AuthSubject,
    user_id: uuid.UUID,
    *,
    followers: bool,
    cursor: str | None,
    limit: int,
) -> tuple[list[FollowOut], str | None]:
    user = await _member(session, subject, user_id)
    rows = await repo.follow_page(
        session, subject.tenant_id, user.id, followers=followers, cursor=cursor, limit=limit
    )
    items = [FollowOut(user_id=r[0], display_name=r[1], followed_at=r[2]) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit and items:
        next_cursor = encode_cursor(items[-1].followed_at, items[-1].user_id)
    return items, next_cursor
