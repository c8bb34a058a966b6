"""Rendering pages: the Jinja2 environment (autoescaped), the headers every page gets, the
cookies a request decided on, and the HTML error page."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import Response

from bigfootlive.authz.roles import Permission
from bigfootlive.config import Settings
from bigfootlive.web.assets import TEMPLATES_DIR, static_url, vendor_file
from bigfootlive.web.security import page_headers
from bigfootlive.web.session import cookies_of, csrf_token

# Paths that are pages (HTML errors); the JSON API and the machine endpoints keep JSON.
_NOT_PAGES = ("/api/", "/ws/", "/static/", "/health", "/ready", "/metrics", "/openapi.json")


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static"] = static_url
    env.globals["vendor"] = lambda package: static_url(vendor_file(package))
    env.globals["can_stream"] = lambda subject: subject.can(Permission.EVENTS_CREATE)
    env.globals["can_admin"] = lambda subject: subject.can(Permission.USERS_MANAGE)
    return env


def finish(request: Request, response: Response) -> Response:
    settings: Settings = request.app.state.settings
    response.headers.update(page_headers(settings))
    response.headers.setdefault("Cache-Control", "no-store")
    cookies_of(request).apply(response, settings)
    return response


def page(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> Response:
    body = (
        environment()
        .get_template(template)
        .render(
            request=request,
            csrf_token=csrf_token(request),
            user=getattr(request.state, "web_subject", None),
            **(context or {}),
        )
    )
    return finish(request, HTMLResponse(body, status_code=status))


def redirect(request: Request, url: str) -> Response:
    return finish(request, RedirectResponse(url, status_code=303))


def wants_page(request: Request) -> bool:
    path = request.url.path
    if path.startswith(_NOT_PAGES) or path in ("/docs", "/api-docs"):
        return False
    return "text/html" in request.headers.get("accept", "")


_TITLES = {
    400: "Bad request",
    401: "Sign-in required",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed",
    409: "Conflict",
    413: "Too large",
    422: "Check the form",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Unavailable",
}


def error_page(
    request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    response = page(
        request,
        "error.html",
        {"status": status, "code": code, "message": message, "title": _TITLES.get(status, "Error")},
        status=status,
    )
    for name, value in (headers or {}).items():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response
