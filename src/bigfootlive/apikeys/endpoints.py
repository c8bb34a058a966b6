from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status

from bigfootlive.apikeys import service
from bigfootlive.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, KeyScope
from bigfootlive.authz.deps import require
from bigfootlive.authz.roles import Permission
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.deps import DbSession, Meta, ReadSession, State
from bigfootlive.routing import JsonRoute

router = APIRouter(prefix="/api/api-keys", tags=["api keys"], route_class=JsonRoute)

KeyManager = Annotated[AuthSubject, Depends(require(Permission.API_KEYS_MANAGE))]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_key(
    body: ApiKeyCreate, subject: KeyManager, session: DbSession, meta: Meta
) -> ApiKeyCreated:
    key, secret = await service.create_key(session, meta, subject, body)
    return ApiKeyCreated(**service.key_out(key).model_dump(), key=secret)


@router.get("")
async def list_keys(
    subject: KeyManager, session: ReadSession, scope: KeyScope = KeyScope.TENANT
) -> list[ApiKeyOut]:
    return [service.key_out(k) for k in await service.list_keys(session, subject, scope)]


@router.delete("/{key_id}")
async def revoke_key(
    key_id: uuid.UUID, subject: KeyManager, state: State, session: DbSession, meta: Meta
) -> ApiKeyOut:
    return service.key_out(await service.revoke_key(state, session, meta, subject, key_id))
