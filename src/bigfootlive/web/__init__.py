"""The web app: server-rendered pages (Jinja2, htmx, small native ES modules) under `/`.

An edge package like the API routers: pages call the same services and the same authorization
as the JSON API. Browser sessions are cookies holding our own session's tokens (`session.py`),
every state-changing request carries a CSRF token (`security.py`), and every page is served
with a strict Content-Security-Policy (no inline scripts; third-party files shipped in
`static/vendor/`, pinned by `static/vendor/manifest.json`).
"""
