"""Request-scoped dependencies: app state, database sessions and request metadata."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from bigfootlive.composition import AppState
from bigfootlive.db import run_after_commit
from bigfootlive.kit.net import client_ip, user_agent
from bigfootlive.kit.request import RequestMeta


def app_state(connection: HTTPConnection) -> AppState:
    """The app's state, for code that reads a request or a WebSocket without dependencies."""
    state: AppState = connection.app.state.bigfoot
    return state


# Dependencies are `async def` even when they never await: FastAPI runs a plain `def`
# dependency in a worker thread, a thread hop on every request for a getattr.
async def get_state(request: Request) -> AppState:
    return app_state(request)


State = Annotated[AppState, Depends(get_state)]


async def get_session(state: State) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: commits once after the endpoint returns, else rolls back."""
    async with state.db.sessionmaker() as session:
        try:
            yield session
            if session.in_transaction():  # else nothing to commit (see `Database.transaction`)
                await session.commit()
        except BaseException:
            await session.rollback()
            raise
    await run_after_commit(session)


async def get_read_session(state: State) -> AsyncIterator[AsyncSession]:
    """Read-only queries that must see every committed write (authentication, a resource just
    created, lists a user edits): served by the primary, never committed."""
    async with state.db.sessionmaker() as session:
        yield session


async def get_report_session(state: State) -> AsyncIterator[AsyncSession]:
    """Analytics and report reads that may lag by the replication delay: served by the read
    replica (`DATABASE_READ_URL`) when one is configured, else by the primary."""
    async with state.db.read_sessionmaker() as session:
        yield session


# scope="function": commit before the response is sent, so a 2xx means the data is durable.
DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]
ReadSession = Annotated[AsyncSession, Depends(get_read_session)]
ReportSession = Annotated[AsyncSession, Depends(get_report_session)]


def request_meta(request: Request, state: AppState) -> RequestMeta:
    """The request's client address, user agent and id (`Meta`)."""
    return RequestMeta(
        ip=client_ip(request, state.settings.trusted_proxies),
        user_agent=user_agent(request),
        request_id=getattr(request.state, "request_id", ""),
    )


async def get_request_meta(request: Request, state: State) -> RequestMeta:
    return request_meta(request, state)


Meta = Annotated[RequestMeta, Depends(get_request_meta)]
