"""Every page of the platform and admin consoles, the account pages and the member pages of the
directory (a user's page, follow) sends a browser without a session to sign in, with the page to
come back to: each route walked, pages and forms (a valid form with the page's CSRF token), htmx
requests alike."""

from __future__ import annotations

import enum
import typing
import uuid
from urllib.parse import quote

import httpx
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from tests.test_routes import _concrete
from tests.web.helpers import HTML, csrf_of

MEMBER_PAGES = ("/platform", "/admin/", "/u/", "/account")
# Where a signed-out browser comes back to, when not the page it asked for.
BACK = {"/admin/dashboard.csv": "/admin/dashboard", "/account/verify": "/account/security"}
# The security page's forms (enrol, confirm, remove a factor) come back to the security page.
SECURITY_FORMS = "/account/mfa/"
# Form fields whose values a type does not say (a pattern).
FIELDS = {"method": "password"}


def _value(annotation: typing.Any) -> str:
    """A form value of this type (the first of an enumeration)."""
    kinds = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    kind = kinds[0]
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return str(next(iter(kind)).value)
    if kind is bool:
        return "false"
    if kind is int:
        return "1"
    if kind is uuid.UUID:
        return str(uuid.UUID(int=1))
    return "x"


def _form(route: typing.Any) -> dict[str, str]:
    form: dict[str, str] = {}
    for param in route.original_route.dependant.body_params:
        if param.field_info.is_required():
            form[param.alias] = FIELDS.get(param.alias) or _value(param.field_info.annotation)
    return form


def _member_routes(app: FastAPI) -> list[tuple[str, str, typing.Any]]:
    return [
        (method, _concrete(route.path_format, route.param_convertors), route)
        for route in iter_route_contexts(app.routes)
        if route.methods and route.path_format.startswith(MEMBER_PAGES)
        for method in sorted(route.methods - {"HEAD"})
    ]


async def test_every_member_page_sends_a_signed_out_browser_to_sign_in(
    app: FastAPI, client: httpx.AsyncClient
):
    token = csrf_of(await client.get("/signin", headers=HTML))
    routes = _member_routes(app)
    assert len(routes) > 50
    for htmx in ({}, {"hx-request": "true"}):
        for method, path, route in routes:
            data = {"csrf_token": token, **_form(route)} if method == "POST" else None
            answer = await client.request(method, path, data=data, headers={**HTML, **htmx})
            assert answer.status_code == 303, (method, path, answer.text[:300])
            back = quote(
                "/account/security" if path.startswith(SECURITY_FORMS) else BACK.get(path, path)
            )
            assert answer.headers["location"] == f"/signin?next={back}", (method, path)


async def test_an_invalid_form_is_answered_before_the_sign_in(client: httpx.AsyncClient):
    """FastAPI reads the request first, as when each handler tested the session itself."""
    token = csrf_of(await client.get("/signin", headers=HTML))
    for path in ("/platform/tenants", "/admin/users", "/admin/chat"):
        form = {"csrf_token": token, "name": "x" * 201, "words": "x" * 70_001}
        answer = await client.post(path, data=form, headers=HTML)
        assert answer.status_code == 422, (path, answer.status_code)
