"""Shared by the in-process page tests: a page's CSRF token, posting a page's form; events in a
given state."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from bigfootlive.composition import AppState
from bigfootlive.events import access, lifecycle
from tests.fixtures.factories import Account

HTML = {"accept": "text/html"}


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def meta_csrf_of(page: httpx.Response) -> str:
    """The page's CSRF token from its `<meta name="csrf-token">` (what the page's scripts send)."""
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def say(client: httpx.AsyncClient, who: Account, event_id: str, body: str) -> str:
    """Send a chat message through the API; its id."""
    sent = await client.post(
        f"/api/events/{event_id}/chat", json={"body": body}, headers=who.headers
    )
    assert sent.status_code in (200, 201), sent.text
    message_id: str = sent.json()["id"]
    return message_id


async def submit(
    client: httpx.AsyncClient, form_page: str, action: str, **fields: Any
) -> httpx.Response:
    """GET `form_page` (for its token), then POST `fields` with it to `action`."""
    shown = await client.get(form_page, headers=HTML)
    return await client.post(action, data={"csrf_token": csrf_of(shown), **fields}, headers=HTML)


def alert_of(page: httpx.Response) -> str:
    found = re.search(r'role="alert"[^>]*>([^<]+)<', page.text)
    assert found, page.text
    return found.group(1)


async def event(
    client: httpx.AsyncClient, owner: Account, title: str, visibility: str = "public", **fields: Any
) -> dict[str, Any]:
    created = await client.post(
        "/api/events",
        json={"title": title, "visibility": visibility, **fields},
        headers=owner.headers,
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def go_live(state: AppState, client: httpx.AsyncClient, owner: Account, body: dict[str, Any]):
    """Started through the API, then the media server's publish (as its callback would)."""
    started = await client.post(f"/api/events/{body['id']}/start", headers=owner.headers)
    assert started.status_code == 200, started.text
    async with state.db.transaction() as session:
        found = await access.get_event(session, uuid.UUID(body["tenant_id"]), uuid.UUID(body["id"]))
        await lifecycle.publisher_connected(state, session, found, "encoder-1")


async def end(client: httpx.AsyncClient, owner: Account, body: dict[str, Any]) -> None:
    stopped = await client.post(f"/api/events/{body['id']}/stop", headers=owner.headers)
    assert stopped.status_code == 200, stopped.text
