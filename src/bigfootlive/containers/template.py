"""The subprocess runtime's worker template: one process that has already started Python and
imported the worker, and forks a worker per event on request (instead of a new interpreter
paying its start-up and imports per container: seconds, against milliseconds for a fork).

    python -m bigfootlive.containers.template [--settings-file PATH] <room for the titles>

Protocol, one JSON object a line. In (stdin): {"argv": [...], "log": path, "memory": bytes}:
fork a worker that runs `bigfootlive <argv>`. Out (stdout): {"ready": true} once everything is
imported, {"pid": n} (or {"error": "..."}) for
each request in order, and {"exited": pid, "code": n} when a worker ends (the template is its
parent and reaps it). When stdin closes (the API process is gone) the template exits and its
workers keep running: as before, the next API process adopts them by their command line,
which each worker sets as its process title.

Before it says it is ready the template also does, once, what every worker would otherwise do
first: it builds the CLI's click command, parses the runtime's settings file (a worker given it
unchanged takes the parsed settings) and freezes its objects out of the garbage collector (a
worker's first collections would otherwise walk, and so copy, every page the imports made). No
socket, connection or thread is opened before a fork: each worker opens its own.

A worker is what `bigfootlive container run` would be: its own session and process group, stdin
from /dev/null, stdout and stderr to its log, RLIMIT_AS and nice (`subprocess._limit_resources`).
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import sys
from typing import Any

import typer.main
from sqlalchemy.orm import configure_mappers

# Pre-imported: what every worker needs (the CLI, the app state, the worker and their
# libraries), so that a fork has nothing left to import.
import bigfootlive.cli
import bigfootlive.composition
import bigfootlive.containers.worker
import bigfootlive.observability.logging
from bigfootlive.cli_settings import preload_settings_file
from bigfootlive.jobs.registry import load_tasks
from bigfootlive.kit import jsonparse

load_tasks()  # every task module (the app state's job queue imports them, SSO's SAML included)
configure_mappers()  # the ORM's mappers, which the first query would otherwise configure
# The CLI as click runs it (typer builds it from every command's signature at each call).
COMMAND = typer.main.get_command(bigfootlive.cli.app)

# Bytes of command line each worker may show as its title (the template's own argv gives room).
TITLE_ROOM = 2048


def main() -> None:
    if sys.argv[1:2] == ["--settings-file"]:
        preload_settings_file(sys.argv[2])
    gc.collect()
    gc.freeze()  # what is here now stays shared with the workers, untouched by their collections
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    stdin = sys.stdin.fileno()
    _answer({"ready": True})  # everything is imported and prepared
    buffered = b""
    while True:
        try:
            ready, _, _ = select.select([stdin, wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            os.read(wake_r, 4096)
            _reap()
        if stdin in ready:
            chunk = os.read(stdin, 65536)
            if not chunk:
                return  # the API process is gone: the workers carry on, adopted later
            buffered += chunk
            while b"\n" in buffered:
                line, buffered = buffered.split(b"\n", 1)
                if line.strip():
                    _answer(_spawn(jsonparse.loads(line), (wake_r, wake_w)))


def _answer(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _answer({"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _spawn(request: dict[str, Any], wake: tuple[int, int]) -> dict[str, Any]:
    argv = [str(a) for a in request["argv"]]
    try:
        log_fd = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError as exc:
        return {"error": f"log: {exc}"}
    sys.stdout.flush()
    pid = os.fork()
    if pid:
        os.close(log_fd)
        return {"pid": pid}
    code = 1
    try:
        _become_worker(argv, log_fd, int(request["memory"]), wake)
        code = _run_cli(argv)
    finally:
        os._exit(code)


def _become_worker(argv: list[str], log_fd: int, memory: int, wake: tuple[int, int]) -> None:
    from bigfootlive.containers.subprocess import _limit_resources

    os.setsid()
    signal.set_wakeup_fd(-1)
    for fd in wake:
        os.close(fd)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(devnull)
    os.close(log_fd)
    sys.stdin = open(0, closefd=False)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False)
    _limit_resources(memory)
    _set_title([sys.executable, "-m", "bigfootlive.cli", *argv])


def _set_title(words: list[str]) -> None:
    """Show `words` as the command line (ps, psutil: what `adopt` looks for). The title fills
    the whole argv area, padded in one last word, so psutil splits it back into words."""
    try:
        import setproctitle
    except ImportError:  # pragma: no cover - a dependency; without it nothing finds the worker
        return
    title = " ".join(words)
    setproctitle.setproctitle("x" * (TITLE_ROOM * 4))
    try:
        with open("/proc/self/cmdline", "rb") as f:
            room = len(f.read()) - 1
    except OSError:  # no procfs: the title as it is
        room = 0
    padding = room - len(title) - 1
    setproctitle.setproctitle(title + " " + "-" * padding if padding > 0 else title)


def _run_cli(argv: list[str]) -> int:
    sys.argv = ["bigfootlive", *argv]
    try:
        COMMAND.main(args=argv, prog_name="bigfootlive")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":
    main()
