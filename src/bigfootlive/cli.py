"""`bigfootlive`: serve, run workers, migrate, and administer tenants and users."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import getpass
import os
import sys
import tempfile
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bigfootlive.cli_ops import backup_app, keys_app
from bigfootlive.cli_settings import _refuse, load_settings, load_settings_file

if TYPE_CHECKING:
    from bigfootlive.composition import AppState

app = typer.Typer(help="BigfootLive platform backend.", no_args_is_help=True)
tenant_app = typer.Typer(help="Manage tenants.", no_args_is_help=True)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
container_app = typer.Typer(help="Event containers.", no_args_is_help=True)
media_app = typer.Typer(help="The media server (nginx-rtmp).", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
app.add_typer(user_app, name="user")
app.add_typer(container_app, name="container")
app.add_typer(media_app, name="media-server")
app.add_typer(backup_app, name="backup")
app.add_typer(keys_app, name="keys")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: PORT, 3001)")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Processes (default: WEB_CONCURRENCY)")
    ] = None,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (development)")] = False,
    backlog: Annotated[
        int, typer.Option(help="Connections waiting to be accepted (viewer reconnect storms)")
    ] = 2048,
    app_path: Annotated[
        str, typer.Option("--app", hidden=True, help="Import string of the ASGI app (benchmarks)")
    ] = "bigfootlive.main:app",
    factory: Annotated[bool, typer.Option(hidden=True, help="--app names an app factory")] = False,
) -> None:
    """Run the API server (uvicorn with uvloop and httptools)."""
    import uvicorn

    from bigfootlive.observability.logging import configure_logging
    from bigfootlive.serving import uvicorn_options
    from bigfootlive.streaming.managed.nginx_conf import LayoutError
    from bigfootlive.streaming.managed.runner import media_server

    # The app's settings (in every worker) see the options as HOST and PORT: PUBLIC_BASE_URL's
    # default follows them
    if host:
        os.environ["HOST"] = host
    if port:
        os.environ["PORT"] = str(port)
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_json)
    if settings.should_auto_migrate:
        from bigfootlive.migrations import upgrade_database

        asyncio.run(upgrade_database(settings.migration_url))
    if workers:  # each process sizes its share of the host by it (password-hashing pool)
        os.environ["WEB_CONCURRENCY"] = str(workers)
    with contextlib.ExitStack() as stack:
        if (workers or settings.web_concurrency) > 1 and not settings.password_hash_slots_dir:
            # The workers' hashes share the cores through slots of their own (kit/host_slots):
            # each worker may hash on every core, all of them together on no more than that.
            slots_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="bfl-hash-"))
            os.environ["PASSWORD_HASH_SLOTS_DIR"] = slots_dir
        try:
            stack.enter_context(media_server(settings, api_port=port or settings.port))
        except LayoutError as exc:
            _refuse("bigfootlive: the media server cannot start:", [str(exc)])
        uvicorn.run(
            app_path,
            **uvicorn_options(
                host=host or settings.host,
                port=port or settings.port,
                workers=workers or settings.web_concurrency,
                reload=reload,
                factory=factory,
                backlog=backlog,
            ),
        )


@media_app.command("config")
def media_server_config(
    api_url: Annotated[
        str | None,
        typer.Option(help="How nginx reaches the API (default: MEDIA_API_URL, else this host)"),
    ] = None,
) -> None:
    """Print the nginx configuration of the managed media server, for your own nginx
    (MEDIA_SERVER_MODE=external). It holds the media-server credential: keep it private."""
    from bigfootlive.streaming.managed.nginx_conf import LayoutError, MediaLayout

    settings = load_settings()
    layout = MediaLayout.from_settings(settings)
    if api_url:
        layout = dataclasses.replace(layout, api_url=api_url.rstrip("/"))
    try:
        typer.echo(layout.render(), nl=False)
    except LayoutError as exc:
        _refuse("bigfootlive: cannot generate the configuration:", [str(exc)])


@media_app.command("run")
def media_server_run() -> None:
    """Run the media server in the foreground (a container of its own, deploy/k8s
    media-server.yaml): write the generated nginx configuration, then exec nginx."""
    import os

    from bigfootlive.streaming.managed.nginx_conf import LayoutError, MediaLayout

    settings = load_settings()
    layout = MediaLayout.from_settings(settings)
    try:
        conf = layout.write()
    except LayoutError as exc:
        _refuse("bigfootlive: cannot generate the configuration:", [str(exc)])
    run = str(layout.runtime_dir)
    binary = settings.nginx_binary
    os.execvp(binary, [binary, "-p", run, "-e", str(layout.error_log), "-c", str(conf)])  # noqa: S606


@app.command()
def worker(
    threads: Annotated[
        int | None, typer.Option(help="Worker threads (default: JOBS_WORKER_THREADS)")
    ] = None,
    queue: Annotated[
        list[str] | None, typer.Option(help="Only these queues, e.g. bigfootlive.high")
    ] = None,
    cron: Annotated[bool, typer.Option(help="Also run the cron scheduler")] = True,
) -> None:
    """Run background job workers on the configured broker (BROKER_URL or REDIS_URL)."""
    from bigfootlive.jobs.worker import run_worker
    from bigfootlive.observability.errortracking import init_error_tracking

    settings = load_settings()
    init_error_tracking(settings)
    if settings.should_auto_migrate:
        from bigfootlive.migrations import upgrade_database

        asyncio.run(upgrade_database(settings.migration_url))
    from bigfootlive.authz.scoping import platform_scope

    with platform_scope("job worker"):  # cron and the outbox relay; each job logs its own
        asyncio.run(
            run_worker(
                settings, threads=threads, queues=set(queue) if queue else None, scheduler=cron
            )
        )


@app.command()
def migrate(revision: Annotated[str, typer.Argument(help="Target revision")] = "heads") -> None:
    """Apply database migrations (as DATABASE_MIGRATION_URL's role, else DATABASE_URL's)."""
    from bigfootlive.migrations import upgrade_database

    settings = load_settings()
    url = settings.migration_url
    typer.echo(f"migrating {url.split('@')[-1]} to {revision} ...")
    asyncio.run(upgrade_database(url, revision))
    typer.echo("done")


@tenant_app.command("create")
def tenant_create(
    slug: Annotated[str, typer.Option(help="URL-safe identifier, e.g. acme")],
    name: Annotated[str, typer.Option(help="Display name")],
    allow_registration: Annotated[bool, typer.Option(help="Allow self-registration")] = False,
    domain: Annotated[
        list[str] | None, typer.Option(help="Verified email domain (repeatable)")
    ] = None,
) -> None:
    """Create a tenant."""
    from bigfootlive.tenants import service as tenants
    from bigfootlive.tenants.schemas import TenantSettings

    async def run() -> str:
        state = await _state()
        try:
            async with state.db.transaction() as session:
                tenant = await tenants.create_tenant(
                    session,
                    slug=slug,
                    name=name,
                    settings=TenantSettings(allow_self_registration=allow_registration),
                    email_domains=domain or [],
                )
                return str(tenant.id)
        finally:
            await state.close()

    typer.echo(f"tenant {slug} created: {_run(run())}")


def _set_tenant_active(slug: str, active: bool) -> str:
    from bigfootlive.errors import NotFound
    from bigfootlive.tenants import service as tenants

    async def run() -> str:
        state = await _state()
        try:
            async with state.db.transaction() as session:
                tenant = await tenants.get_tenant_by_slug(session, slug)
                if tenant is None:
                    raise NotFound("No such tenant", code="tenant_not_found")
                changed = await tenants.set_active(state, session, None, tenant, active)
                return "" if changed else " (no change)"
        finally:
            await state.close()

    return _run(run())


@tenant_app.command("deactivate")
def tenant_deactivate(slug: Annotated[str, typer.Argument(help="Tenant slug")]) -> None:
    """Deactivate a tenant: its members, sessions and API keys are refused until reactivated."""
    typer.echo(f"tenant {slug} deactivated{_set_tenant_active(slug, False)}")


@tenant_app.command("activate")
def tenant_activate(slug: Annotated[str, typer.Argument(help="Tenant slug")]) -> None:
    """Reactivate a tenant."""
    typer.echo(f"tenant {slug} activated{_set_tenant_active(slug, True)}")


@user_app.command("create")
def user_create(
    tenant: Annotated[str, typer.Option(help="Tenant slug")],
    email: Annotated[str, typer.Option()],
    name: Annotated[str, typer.Option(help="Display name")],
    role: Annotated[str, typer.Option(help="viewer | streamer | moderator | admin")] = "viewer",
    platform_admin: Annotated[bool, typer.Option(help="Grant platform administration")] = False,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin")] = False,
) -> None:
    """Create a user (the password is prompted for, or read from stdin; never an argument)."""
    from bigfootlive.authz.roles import Role
    from bigfootlive.identity import accounts
    from bigfootlive.tenants import service as tenants

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:  # typed unseen: twice, so that a typo does not become the account's password
        password = getpass.getpass("Password: ")
        if getpass.getpass("The same password again: ") != password:
            typer.echo("error: the two passwords differ; nothing was created", err=True)
            raise typer.Exit(2)

    async def run() -> str:
        state = await _state()
        try:
            async with state.db.transaction() as session:
                found = await tenants.get_tenant_by_slug(session, tenant)
                if found is None:
                    raise typer.BadParameter(f"no tenant {tenant!r}")
                user = await accounts.create_account(
                    state,
                    session,
                    tenant=found,
                    email=email,
                    display_name=name,
                    role=Role(role),
                    password=password,
                    is_platform_admin=platform_admin,
                    email_verified=True,
                )
                return str(user.id)
        finally:
            await state.close()

    typer.echo(f"user {email} created: {_run(run())}")


@container_app.command(
    "run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def container_run(
    event: Annotated[str, typer.Option(help="Event id")],
    handle: Annotated[
        str | None, typer.Option(help="Launch token from the manager (default: take over)")
    ] = None,
    settings_file: Annotated[
        str | None, typer.Option(help="JSON settings (else the environment)", hidden=True)
    ] = None,
) -> None:
    """Run one event's worker until the event ends or SIGTERM (drains, exits 0)."""
    import signal
    import uuid

    from bigfootlive.composition import AppState
    from bigfootlive.containers.worker import EventWorker
    from bigfootlive.observability.logging import configure_logging

    settings = load_settings_file(settings_file) if settings_file else load_settings()
    configure_logging(settings.log_level, settings.log_json)

    async def run() -> int:
        state = AppState.build(settings)
        worker = EventWorker(
            state,
            uuid.UUID(event),
            handle=handle or f"manual:{uuid.uuid4().hex[:12]}",
            takeover=handle is None,
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        try:
            return await worker.run()
        finally:
            await state.close()

    from bigfootlive.authz.scoping import platform_scope

    with platform_scope("event container"):
        raise typer.Exit(asyncio.run(run()))


async def _state() -> AppState:
    from bigfootlive.composition import AppState
    from bigfootlive.migrations import upgrade_database

    settings = load_settings()
    if settings.should_auto_migrate:
        await upgrade_database(settings.migration_url)
    return AppState.build(settings)


def _details(details: dict[str, Any]) -> str:
    """` (problems: must be at least 12 characters; is too common)`, not a dict's repr."""
    parts = [
        f"{k}: {'; '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in details.items()
    ]
    return f" ({', '.join(parts)})" if parts else ""


def _run(coro: Coroutine[Any, Any, str]) -> str:
    from bigfootlive.authz.scoping import platform_scope
    from bigfootlive.errors import BigfootError

    try:
        with platform_scope("cli administration"):  # the operator acts for the platform
            return asyncio.run(coro)
    except BigfootError as exc:
        typer.echo(f"error: {exc.code}: {exc.message}{_details(exc.details)}", err=True)
        raise typer.Exit(2) from exc


if __name__ == "__main__":
    app()
