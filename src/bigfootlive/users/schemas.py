from __future__ import annotations

import datetime as dt
import uuid

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from bigfootlive.authz.roles import Role


class ProfileOut(BaseModel):
    id: uuid.UUID
    display_name: str
    bio: str
    avatar_url: str | None
    role: Role
    followers: int
    following: int
    is_following: bool
    created_at: dt.datetime


class ProfileUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(None, min_length=1, max_length=100)
    bio: str | None = Field(None, max_length=1000)
    avatar_url: AnyHttpUrl | None = None


class FollowOut(BaseModel):
    user_id: uuid.UUID
    display_name: str
    followed_at: dt.datetime


class FollowState(BaseModel):
    following: bool
    followers: int
