"""Every route of the app, walked: methods a path does not support answer 405 (JSON, with an
`Allow` naming what it does support), no route hides a later one, and FastAPI parses every JSON
body with the depth-limited parser (`bigfootlive.routing.JsonRoute`)."""

from __future__ import annotations

import re
import uuid
from collections import defaultdict

from fastapi.routing import APIRoute, iter_route_contexts

from bigfootlive.authz.roles import Role
from bigfootlive.routing import JsonRoute

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_PARAM = re.compile(r"{([^}:]+)(?::([^}]+))?}")


def _http_routes(app):
    return [r for r in iter_route_contexts(app.routes) if r.methods]


def _concrete(path_format: str, convertors: dict) -> str:
    """`path_format` with each parameter replaced by a value its convertor accepts."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        kind = type(convertors.get(name)).__name__
        if kind == "IntegerConvertor":
            return "1"
        if kind == "UUIDConvertor" or name.endswith("id"):
            return str(uuid.UUID(int=1))
        return "sample"

    return _PARAM.sub(value, path_format)


def _paths(app) -> dict[str, set[str]]:
    """Concrete path -> the methods its own routes declare."""
    declared: dict[str, set[str]] = defaultdict(set)
    for route in _http_routes(app):
        declared[_concrete(route.path_format, route.param_convertors)] |= set(route.methods)
    return declared


def test_every_api_route_parses_json_with_the_depth_limited_parser(app) -> None:
    plain = [
        r.path_format
        for r in iter_route_contexts(app.routes)
        if isinstance(r.original_route, APIRoute) and not isinstance(r.original_route, JsonRoute)
    ]
    assert plain == [], "declare these routers with route_class=JsonRoute"


def test_no_route_is_hidden_by_an_earlier_one(app) -> None:
    routes = _http_routes(app)
    hidden = []
    for index, route in enumerate(routes):
        path = _concrete(route.path_format, route.param_convertors)
        for earlier in routes[:index]:
            if earlier.path_regex.match(path) and set(earlier.methods) & set(route.methods):
                hidden.append(
                    f"{sorted(route.methods)} {route.path_format} by {earlier.path_format}"
                )
    assert hidden == []


async def test_unsupported_methods_answer_405_with_allow_on_every_path(app, client) -> None:
    wrong = []
    for path, allowed in sorted(_paths(app).items()):
        for method in METHODS:
            if method in allowed:
                continue
            response = await client.request(method, path)
            expected_allow = ", ".join(sorted(allowed))
            if (
                response.status_code != 405
                or response.headers.get("content-type") != "application/json"
                or response.json()["error"]["code"] != "method_not_allowed"
                or response.headers.get("allow") != expected_allow
            ):
                wrong.append(
                    f"{method} {path}: {response.status_code} allow="
                    f"{response.headers.get('allow')!r} (want 405, {expected_allow!r})"
                )
    assert wrong == []


async def test_chat_unpin_is_reachable_over_http(client, factory) -> None:
    tenant = await factory.tenant()
    streamer = await factory.user(tenant, role=Role.STREAMER)
    created = await client.post("/api/events", json={"title": "Show"}, headers=streamer.headers)
    event_id = created.json()["id"]
    sent = await client.post(
        f"/api/events/{event_id}/chat", json={"body": "read this"}, headers=streamer.headers
    )
    assert sent.status_code == 201, sent.text
    pinned = await client.put(
        f"/api/events/{event_id}/chat/pin",
        json={"message_id": sent.json()["id"]},
        headers=streamer.headers,
    )
    assert pinned.status_code == 200, pinned.text

    unpinned = await client.delete(f"/api/events/{event_id}/chat/pin", headers=streamer.headers)

    assert unpinned.status_code == 204, unpinned.text
    room = await client.get(f"/api/events/{event_id}/chat/room", headers=streamer.headers)
    assert room.json()["pinned"] is None
    # A message is still deleted by its id.
    deleted = await client.delete(
        f"/api/events/{event_id}/chat/{sent.json()['id']}", headers=streamer.headers
    )
    assert deleted.status_code == 204, deleted.text
