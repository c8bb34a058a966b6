"""One OS process per event: `python -m bigfootlive.cli container run --event ID`.

With CONTAINER_WORKER_TEMPLATE (the default) the process is forked from a template that has
already started Python and imported the worker (template.py, forks.py), and shows that command
line as its title; without it (or when the template fails) it is started with that command.

Limits: with a writable cgroup v2 hierarchy each worker gets its own cgroup (`cpu.max`,
`memory.max`); otherwise (containers, macOS) the address space is capped with RLIMIT_AS and
the CPU share lowered with nice. Each worker leads its own process group, so stopping it also
stops its ffmpeg. Workers survive a restart of the API process: the manager finds them again by
their command line (`adopt`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import psutil
import structlog
from pydantic import SecretStr

from bigfootlive.config import Settings
from bigfootlive.containers.base import ContainerInfo, ContainerSpec, ContainerStats, RunState
from bigfootlive.containers.forks import WorkerTemplate

log = structlog.get_logger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
MARKER = "--bigfootlive-container"
# An API process shutting down waits this long for its workers to drain, then kills them.
CLOSE_GRACE_SECONDS = 3.0


def cluster_tag(settings: Settings) -> str:
    """Which deployment a worker belongs to (its database): adopt only our own."""
    return hashlib.sha256(settings.database_url.encode()).hexdigest()[:12]


def settings_payload(settings: Settings) -> dict[str, Any]:
    """Every setting with secrets in the clear, for a child process's settings file."""

    def plain(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return {name: plain(getattr(settings, name)) for name in type(settings).model_fields}


def _limit_resources(memory_bytes: int) -> None:
    """Runs in the child between fork and exec."""
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    with contextlib.suppress(OSError):
        os.nice(5)


class _Proc:
    def __init__(self, pid: int, spec_event: uuid.UUID, started_at: dt.datetime) -> None:
        self.pid = pid
        self.event_id = spec_event
        self.started_at = started_at
        self.process: asyncio.subprocess.Process | None = None
        self.exit_code: int | None = None
        self.cgroup: Path | None = None
        self.reaper: asyncio.Task[None] | None = None
        self.measured: psutil.Process | None = None
        self.children: list[psutil.Process] = []
        self.forked = False  # by the template, which reports its exit
        self.exited = asyncio.Event()


class SubprocessRuntime:
    name = "subprocess"

    def __init__(self, settings: Settings, *, keep_workers_on_close: bool = False) -> None:
        self.settings = settings
        self.keep_workers_on_close = keep_workers_on_close
        self.tag = cluster_tag(settings)
        self._procs: dict[uuid.UUID, _Proc] = {}
        self._dir = Path(tempfile.mkdtemp(prefix="bfl-containers-"))
        self._settings_file = self._dir / "settings.json"
        self._settings_file.write_text(json.dumps(settings_payload(settings), default=str))
        self._settings_file.chmod(0o600)
        self.cgroups = self._cgroups_available()
        self.template: WorkerTemplate | None = None
        if settings.container_worker_template:
            self.template = WorkerTemplate(
                self._on_worker_exit, self._dir / "template.log", self._settings_file
            )
        self._early_exits: dict[int, int] = {}

    def _cgroups_available(self) -> bool:
        controllers = CGROUP_ROOT / "cgroup.controllers"
        return controllers.exists() and os.access(CGROUP_ROOT, os.W_OK)

    def warm(self) -> None:
        """Start the worker template now (in the background) rather than at the first launch,
        which would otherwise start its worker the slow way while the template warms up."""
        if self.template is not None:
            self.template.warm()

    def command(self, spec: ContainerSpec) -> list[str]:
        return [
            sys.executable, "-m", "bigfootlive.cli", "container", "run",
            "--event", str(spec.event_id),
            "--handle", spec.generation,
            "--settings-file", str(self._settings_file),
            MARKER, self.tag,
        ]  # fmt: skip

    async def launch(self, spec: ContainerSpec) -> ContainerInfo:
        known = self._procs.get(spec.event_id)
        if known is not None and known.exit_code is None and psutil.pid_exists(known.pid):
            return self._info(known)
        memory = self.settings.container_memory_limit_mb * 1024 * 1024
        log_path = self._dir / f"{spec.event_id}.log"
        if self.template is not None:
            self.template.warm()
        if self.template is not None and self.template.ready:
            try:
                pid = await self.template.spawn(self.command(spec)[3:], log_path, memory)
            except Exception:
                log.warning("worker_template_failed", exc_info=True)
            else:
                return self._launched(spec, _Proc(pid, spec.event_id, dt.datetime.now(dt.UTC)))
        with log_path.open("ab") as log_file:
            process = await asyncio.create_subprocess_exec(
                *self.command(spec),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
                preexec_fn=lambda: _limit_resources(memory),
            )
        proc = _Proc(process.pid, spec.event_id, dt.datetime.now(dt.UTC))
        proc.process = process
        proc.cgroup = self._apply_cgroup(spec.event_id, process.pid)
        self._procs[spec.event_id] = proc
        proc.reaper = asyncio.create_task(self._reap(proc), name=f"reap-{process.pid}")
        return self._info(proc)

    def _launched(self, spec: ContainerSpec, proc: _Proc) -> ContainerInfo:
        proc.forked = True
        proc.cgroup = self._apply_cgroup(spec.event_id, proc.pid)
        self._procs[spec.event_id] = proc
        proc.reaper = asyncio.create_task(self._await_exit(proc), name=f"reap-{proc.pid}")
        early = self._early_exits.pop(proc.pid, None)
        if early is not None:
            self._on_worker_exit(proc.pid, early)
        return self._info(proc)

    def _on_worker_exit(self, pid: int, code: int) -> None:
        for proc in self._procs.values():
            if proc.forked and proc.pid == pid and proc.exit_code is None:
                proc.exit_code = code
                proc.exited.set()
                if proc.cgroup is not None:
                    with contextlib.suppress(OSError):
                        proc.cgroup.rmdir()
                return
        self._early_exits[pid] = code  # before `launch` knew the pid

    async def _await_exit(self, proc: _Proc) -> None:
        """A forked worker's reaper: its exit as the template reports it (or, should the
        template be gone, as psutil sees it)."""
        while proc.exit_code is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.exited.wait(), 1.0)
            if proc.exit_code is None and not self._alive(proc):
                return

    def _apply_cgroup(self, event_id: uuid.UUID, pid: int) -> Path | None:
        if not self.cgroups:
            return None
        group = CGROUP_ROOT / "bigfootlive" / f"event-{event_id}"
        try:
            group.mkdir(parents=True, exist_ok=True)
            period = 100_000
            quota = int(self.settings.container_cpu_limit * period)
            (group / "cpu.max").write_text(f"{quota} {period}")
            (group / "memory.max").write_text(
                str(self.settings.container_memory_limit_mb * 1024 * 1024)
            )
            (group / "cgroup.procs").write_text(str(pid))
        except OSError:
            log.warning("cgroup_unavailable", path=str(group))
            return None
        return group

    async def _reap(self, proc: _Proc) -> None:
        if proc.process is None:
            return
        proc.exit_code = await proc.process.wait()
        if proc.cgroup is not None:
            with contextlib.suppress(OSError):
                proc.cgroup.rmdir()

    async def stop(self, event_id: uuid.UUID, *, grace_seconds: float) -> None:
        proc = self._procs.get(event_id)
        if proc is None or proc.exit_code is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        deadline = asyncio.get_running_loop().time() + grace_seconds
        while asyncio.get_running_loop().time() < deadline:
            if not self._alive(proc):
                return
            await asyncio.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        while self._alive(proc):  # noqa: ASYNC110 - an adopted pid has no waitable handle
            await asyncio.sleep(0.05)

    def _alive(self, proc: _Proc) -> bool:
        if proc.process is not None:
            return proc.exit_code is None
        if proc.forked and proc.exit_code is not None:
            return False
        if proc.forked and self.template is not None and self.template.running:
            return True  # the template reaps it and reports its exit
        try:
            return psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            proc.exit_code = proc.exit_code if proc.exit_code is not None else -1
            return False

    async def status(self, event_id: uuid.UUID) -> ContainerInfo | None:
        proc = self._procs.get(event_id)
        return None if proc is None else self._info(proc)

    async def stats(self, event_id: uuid.UUID) -> ContainerStats | None:
        proc = self._procs.get(event_id)
        if proc is None or not self._alive(proc):
            return None
        try:
            if proc.measured is None or proc.measured.pid != proc.pid:
                proc.measured = psutil.Process(proc.pid)
            found = [proc.measured, *proc.measured.children(recursive=True)]
        except psutil.Error:
            return None
        # The same psutil.Process per pid across calls: cpu_percent(None) is the use since the
        # previous call (a fresh object reads 0, and a blocking interval stalls the loop).
        known = {p.pid: p for p in proc.children}
        proc.children = [known.get(p.pid, p) for p in found[1:]]
        cpu, memory = 0.0, 0
        for process in [proc.measured, *proc.children]:
            with contextlib.suppress(psutil.Error):
                cpu += process.cpu_percent(None)
                memory += process.memory_info().rss
        return ContainerStats(cpu_percent=cpu, memory_bytes=memory)

    async def list(self) -> list[ContainerInfo]:
        return [self._info(p) for p in self._procs.values()]

    async def forget(self, event_id: uuid.UUID) -> None:
        proc = self._procs.get(event_id)
        if proc is not None and not self._alive(proc):
            del self._procs[event_id]

    def adopt(self) -> int:
        """Find workers an earlier API process of this deployment started on this machine
        (recognised by their command line)."""
        found = 0
        for process in psutil.process_iter(["pid", "cmdline", "create_time"]):
            cmdline = process.info.get("cmdline") or []
            if MARKER not in cmdline or "--event" not in cmdline:
                continue
            if cmdline[cmdline.index(MARKER) + 1 :][:1] != [self.tag]:
                continue
            with contextlib.suppress(ValueError, IndexError):
                event_id = uuid.UUID(cmdline[cmdline.index("--event") + 1])
                if event_id in self._procs:
                    continue
                started = dt.datetime.fromtimestamp(process.info["create_time"], dt.UTC)
                self._procs[event_id] = _Proc(process.pid, event_id, started)
                found += 1
        return found

    async def close(self) -> None:
        """Drain every worker (or, with `keep_workers_on_close`, leave them running for the
        next API process to adopt). Either way, a worker whose API process was killed keeps
        running and is adopted."""
        if not self.keep_workers_on_close:
            await asyncio.gather(
                *(self.stop(e, grace_seconds=CLOSE_GRACE_SECONDS) for e in list(self._procs)),
                return_exceptions=True,
            )
        if self.template is not None:
            await self.template.close()  # its workers are not its to stop
        for proc in self._procs.values():
            if proc.forked and proc.reaper is not None:
                proc.reaper.cancel()
        self._procs.clear()
        if not self.keep_workers_on_close:
            # The settings file and the workers' logs: every worker has stopped. (Workers left
            # to be adopted keep writing their logs here.)
            shutil.rmtree(self._dir, ignore_errors=True)

    def _info(self, proc: _Proc) -> ContainerInfo:
        alive = self._alive(proc)
        if alive:
            state = RunState.RUNNING
        else:
            state = RunState.EXITED if proc.exit_code == 0 else RunState.FAILED
        return ContainerInfo(
            event_id=proc.event_id,
            handle=f"pid:{proc.pid}",
            state=state,
            started_at=proc.started_at,
            exit_code=proc.exit_code,
        )
