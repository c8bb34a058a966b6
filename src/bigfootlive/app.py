"""create_app(settings): the one place where routers, middleware and resources are wired."""

from __future__ import annotations

import functools
import gc
from collections.abc import AsyncIterator, Awaitable, Collection
from contextlib import asynccontextmanager
from enum import StrEnum
from typing import Any

import structlog
from fastapi import FastAPI, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from bigfootlive import __version__
from bigfootlive.analytics.endpoints import DirectBeacons, beacon_router
from bigfootlive.analytics.endpoints import platform_router as platform_stats_router
from bigfootlive.analytics.endpoints import router as analytics_router
from bigfootlive.apikeys.endpoints import router as api_keys_router
from bigfootlive.authz.scoping import act_for_nobody, platform_scope
from bigfootlive.chat.endpoints import router as chat_router
from bigfootlive.composition import AppState
from bigfootlive.config import Settings
from bigfootlive.containers.endpoints import recordings_router
from bigfootlive.containers.endpoints import router as containers_router
from bigfootlive.containers.tasks import start_manager
from bigfootlive.direct_http import DirectHttp, DirectRoute
from bigfootlive.events.endpoints import router as events_router
from bigfootlive.events.tasks import reconnect_sweeper
from bigfootlive.http_errors import install_error_handlers
from bigfootlive.identity.endpoints import LOGIN_PATH, DirectLogin
from bigfootlive.identity.endpoints import router as auth_router
from bigfootlive.identity.endpoints import tenant_router as tenant_members_router
from bigfootlive.jobs.endpoints import router as jobs_router
from bigfootlive.jobs.worker import JobRuntime
from bigfootlive.kit.nostore import NoStoreMiddleware
from bigfootlive.mfa.endpoints import router as mfa_router
from bigfootlive.mfa.endpoints import tenant_router as mfa_tenant_router
from bigfootlive.migrations import upgrade_database
from bigfootlive.notifications.endpoints import router as notifications_router
from bigfootlive.observability.endpoints import authorized as metrics_authorized
from bigfootlive.observability.endpoints import render_metrics
from bigfootlive.observability.endpoints import router as observability_router
from bigfootlive.observability.errortracking import init_error_tracking
from bigfootlive.observability.logging import configure_logging
from bigfootlive.observability.metrics_server import MetricsServer
from bigfootlive.observability.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from bigfootlive.realtime.connection import CaptureRawSend, DirectSockets
from bigfootlive.realtime.gateway import event_socket
from bigfootlive.realtime.gateway import router as realtime_router
from bigfootlive.realtime.shutdown import install_sigterm_drain
from bigfootlive.route_index import index_routes
from bigfootlive.routing import JsonRoute
from bigfootlive.row_security import NO_ROWS, row_scope
from bigfootlive.serving import DIRECT_SOCKETS
from bigfootlive.sso.endpoints import admin_router as sso_admin_router
from bigfootlive.sso.endpoints import router as sso_router
from bigfootlive.streaming.delivery import router as delivery_router
from bigfootlive.streaming.endpoints import direct_hooks
from bigfootlive.streaming.endpoints import router as streaming_router
from bigfootlive.tenants.endpoints import platform_router as platform_tenants_router
from bigfootlive.tenants.endpoints import router as tenant_router
from bigfootlive.users.endpoints import router as users_router
from bigfootlive.web.account import router as account_router
from bigfootlive.web.admin import router as admin_router
from bigfootlive.web.admin_dashboard import router as admin_dashboard_router
from bigfootlive.web.admin_integrations import router as admin_integrations_router
from bigfootlive.web.admin_settings import public_router as branding_router
from bigfootlive.web.admin_settings import router as admin_settings_router
from bigfootlive.web.assets import STATIC_DIR, static_url, vendor_file
from bigfootlive.web.channel import router as channel_router
from bigfootlive.web.endpoints import router as web_router
from bigfootlive.web.guard import SignInRequired, sign_in_redirect
from bigfootlive.web.invite import router as invite_router
from bigfootlive.web.platform import router as platform_console_router
from bigfootlive.web.signin import router as signin_router
from bigfootlive.web.static_files import MemoryStaticFiles
from bigfootlive.web.stepup import router as step_up_router
from bigfootlive.web.studio import router as studio_router
from bigfootlive.web.studio_analytics import router as studio_analytics_router
from bigfootlive.web.studio_edit import router as studio_edit_router
from bigfootlive.web.studio_simulcast import router as studio_simulcast_router
from bigfootlive.web.studio_stream import router as studio_stream_router
from bigfootlive.web.watch import router as watch_router
from bigfootlive.web.watch_chat import router as watch_chat_router
from bigfootlive.webhooks.endpoints import router as webhooks_router

log = structlog.get_logger(__name__)

# Young-generation size and the collections before an older one (CPython's: 700, 10, 10).
GC_THRESHOLDS = (50_000, 20, 100)


class Loop(StrEnum):
    """The background loops an API process runs beside its requests."""

    JOB_SCHEDULER = "job_scheduler"  # cron and the outbox relay (unless JOBS_SCHEDULER=false)
    ANALYTICS_FLUSH = "analytics_flush"  # without it, beacons are rolled up as they arrive
    RECONNECT_SWEEPER = "reconnect_sweeper"
    CONTAINER_MANAGER = "container_manager"  # unless CONTAINER_MANAGER_ENABLED=false
    REALTIME = "realtime"  # presence heartbeats and reaction counts of the WebSocket hub


class RowScopePerRequest:
    """Each request and WebSocket starts acting for no tenant (row-level security shows it no
    tenant-owned row) until its authentication says whose rows it may touch, and leaves the
    scope as it found it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with row_scope(NO_ROWS):
            await self.app(scope, receive, send)


class BigfootLiveApp(FastAPI):
    """FastAPI, with the HTTP requests of `direct_http` (`direct_http.DirectHttp`: the media
    servers' callbacks, the password sign-in and the players' beacons) answered before any of
    its layers: its own error,
    telemetry and body-limit middleware, ours, and the router. When FastAPI's native
    telemetry (OpenTelemetry) is on, or the app has a root path, they take the stack, where
    the same routes answer them."""

    direct_http: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        direct = self.direct_http
        if direct is not None and scope["type"] == "http" and not self.root_path:
            found = direct.match(scope)
            telemetry = getattr(self, "_native_telemetry", None)
            if found is not None and telemetry is not None and not telemetry.enabled():
                scope["app"] = self
                await direct(scope, receive, send, found)
                return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None, *, loops: Collection[Loop] = tuple(Loop)
) -> BigfootLiveApp:
    """The API. A server runs every loop; a test starts the ones it exercises.

    The lifespan reads its settings from `app.state.settings`: a test may point an app at new
    settings between two starts (FastAPI prepares each app's routes on its first requests,
    which takes longer than most tests).
    """
    settings = settings or Settings()
    settings.check_production()
    configure_logging(settings.log_level, settings.log_json)
    tracking = init_error_tracking(settings)
    for warning in settings.warnings:
        log.warning("settings_warning", detail=warning)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config: Settings = app.state.settings
        act_for_nobody()  # the loops below say whose rows they touch
        if config.should_auto_migrate:
            await upgrade_database(config.migration_url)
        state = AppState.build(config)
        app.state.bigfoot = state
        try:
            await state.db.check_row_security(config)
            await state.start_caches()
        except BaseException:
            await state.close()
            raise
        with platform_scope("job runtime"):  # cron and outbox relay (each job sets its own)
            jobs = await JobRuntime.start(
                state,
                worker=state.jobs.runs_worker_in_api,
                scheduler=config.jobs_scheduler and Loop.JOB_SCHEDULER in loops,
            )
        if Loop.ANALYTICS_FLUSH in loops:
            with platform_scope("analytics flush"):
                state.beacons.start()
        log.info(
            "started",
            version=__version__,
            database=state.db.engine.dialect.name,
            redis=bool(config.redis_url),
        )
        sweeper = reconnect_sweeper(state)
        if Loop.RECONNECT_SWEEPER in loops:
            with platform_scope("reconnect sweeper"):
                sweeper.start()
        containers = None
        if Loop.CONTAINER_MANAGER in loops:
            with platform_scope("container manager"):
                containers = start_manager(state)
        if Loop.REALTIME in loops:
            state.hub.start()
        metrics_server = None
        if config.metrics_port is not None:
            metrics_server = MetricsServer(
                config.metrics_host or config.host,
                config.metrics_port,
                functools.partial(render_metrics, state),
                functools.partial(metrics_authorized, config),
            )
            await metrics_server.start()
        restore_sigterm = install_sigterm_drain()
        if config.gc_tuning:
            # What start-up built (modules, the app, pools) lives as long as the process: out of
            # the collector's reach, a full collection no longer walks it each time. And a larger
            # young generation: the objects of a request or a handshake die before they are
            # promoted, so full collections (which walk every open socket's objects) are rare.
            # Profiled at 20k viewers with the defaults: half the CPU of a connect storm was GC.
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)
        try:
            yield
        finally:
            restore_sigterm()
            if metrics_server is not None:
                await metrics_server.stop()
            if containers is not None:
                manager, loop = containers
                await loop.stop()
                await manager.shutdown()
            await sweeper.stop()
            await state.beacons.stop()
            await jobs.stop()
            await state.close()
            log.info("stopped")

    app = BigfootLiveApp(
        title="BigfootLive API",
        version=__version__,
        description="Multi-tenant live-streaming platform: events, chat, analytics, SSO and MFA.",
        lifespan=lifespan,
        docs_url=None,  # /docs and /api-docs below, with Swagger UI from our own /static
        redoc_url=None,
    )
    app.state.settings = settings
    app.router.route_class = JsonRoute  # the app's own routes (/api-docs), like every router's
    install_error_handlers(app)
    # The web app's files (docs/web.md), from memory; first, so a file is the router's first match
    app.mount("/static", MemoryStaticFiles(STATIC_DIR), name="static")

    # The watch page and the players' beacons first (no path overlaps): the router tries the
    # routes in order. `index_routes` (below) skips a router that cannot match at once, but a
    # route still pays the failed matches of its own router's earlier routes: a beacon 6 µs of
    # routing first, 25-45 µs inside the analytics router
    app.include_router(beacon_router)
    app.include_router(watch_router)
    for router in (observability_router, auth_router, tenant_router, users_router):
        app.include_router(router)
    app.include_router(events_router)
    app.include_router(mfa_router)
    app.include_router(mfa_tenant_router)
    app.include_router(platform_tenants_router)
    app.include_router(tenant_members_router)
    for router in (
        jobs_router,
        webhooks_router,
        notifications_router,
        analytics_router,
        platform_stats_router,
    ):
        app.include_router(router)
    app.include_router(sso_router)
    app.include_router(sso_admin_router)
    app.include_router(streaming_router)
    app.include_router(delivery_router)
    app.include_router(api_keys_router)
    app.include_router(containers_router)
    app.include_router(recordings_router)
    app.include_router(chat_router)
    app.include_router(realtime_router)
    # The web app's pages under / (docs/web.md)
    app.include_router(web_router)
    app.include_router(signin_router)
    app.include_router(studio_router)
    app.add_exception_handler(SignInRequired, sign_in_redirect)
    app.include_router(studio_analytics_router)
    app.include_router(studio_edit_router)
    app.include_router(studio_simulcast_router)
    app.include_router(admin_router)
    app.include_router(account_router)
    app.include_router(channel_router)
    app.include_router(watch_chat_router)
    app.include_router(studio_stream_router)
    app.include_router(invite_router)
    app.include_router(admin_integrations_router)
    app.include_router(admin_dashboard_router)
    app.include_router(admin_settings_router)
    app.include_router(branding_router)
    app.include_router(platform_console_router)
    app.include_router(step_up_router)

    @app.get("/docs", include_in_schema=False)
    @app.get("/api-docs", include_in_schema=False)
    async def api_docs() -> HTMLResponse:
        # Swagger UI from the package's pinned copy (static/vendor), not a CDN: the reference
        # works offline and behind a firewall, like the pages
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="BigfootLive API reference",
            swagger_js_url=static_url(vendor_file("swagger-ui-dist")),
            swagger_css_url=static_url(vendor_file("swagger-ui-dist/css")),
            swagger_favicon_url="data:,",
        )

    index_routes(app)  # a router whose paths cannot match a request is skipped at once

    app.add_middleware(NoStoreMiddleware)  # tokens, secrets and keys are never cached
    # Outermost first: request context wraps everything, so even 413s carry a request id.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
            max_age=600,
        )
    app.add_middleware(RowScopePerRequest)
    app.add_middleware(RequestContextMiddleware)
    # Outermost: sees the server's own WebSocket send; event sockets skip the layers below.
    # `/ws/events/{id}` sockets skip the HTTP stack: the server's protocol hands them over
    # directly (serving.LeanWebSocketProtocol), CaptureRawSend under other servers.
    direct = DirectSockets(app, {"/ws/events/": _event_socket})
    setattr(app.state, DIRECT_SOCKETS, direct)
    app.add_middleware(CaptureRawSend, direct=direct)
    # The media servers' callbacks, the password sign-in and the beacons skip the HTTP stack too
    # (`direct_http`), unless Sentry traces requests (its transactions start in the stack; its
    # error events come from the `unhandled_error` log line either way).
    if not (tracking and settings.sentry_traces_sample_rate > 0):
        routes: dict[str, DirectRoute] = {**direct_hooks(), LOGIN_PATH: DirectLogin()}
        app.direct_http = DirectHttp(
            app,
            settings.max_body_bytes,
            routes,
            (DirectBeacons(),),
            cors=bool(settings.cors_origins),
        )
    return app


def _event_socket(scope: Any, receive: Any, send: Any, event_id: str) -> Awaitable[None]:
    """`/ws/events/{event_id}` without the HTTP stack (no frame of its own per socket)."""
    return event_socket(WebSocket(scope, receive, send), event_id)
