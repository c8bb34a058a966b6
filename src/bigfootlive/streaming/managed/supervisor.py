"""Runs nginx for `bigfootlive serve`: start, restart on a crash with backoff, stop by pid.

The supervisor is a thread of the `serve` process (the parent of uvicorn's workers), so one
nginx runs however many workers serve the API. nginx's master gets SIGTERM if that thread's
process dies without stopping it (PR_SET_PDEATHSIG), and a master left by a killed run is found
by its pid file and stopped before a new one starts.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

import structlog

from bigfootlive.observability.logging import REDACTED, redact_text
from bigfootlive.streaming.managed.listen_check import check_ports, taken_port
from bigfootlive.streaming.managed.nginx_conf import LayoutError, MediaLayout

log = structlog.get_logger(__name__)

_PR_SET_PDEATHSIG = 1
_STABLE_SECONDS = 30.0  # a run this long resets the backoff


def _load_prctl() -> object | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()


def _preexec() -> None:  # in the child, between fork and exec: no locks, no allocation
    os.setpgrp()  # its own process group: a Ctrl-C in the terminal reaches serve only
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)  # type: ignore[operator]


class NginxSupervisor:
    def __init__(
        self,
        layout: MediaLayout,
        binary: str,
        *,
        backoff_seconds: float = 1.0,
        backoff_max_seconds: float = 30.0,
        api_port: int | None = None,
    ) -> None:
        self.layout = layout
        self.binary = binary
        self.api_port = api_port  # the API's own port, which nginx must not be given
        self.backoff_seconds = backoff_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pump: threading.Thread | None = None
        self._log_start = 0  # where the running nginx's lines begin in logs/error.log

    @property
    def args(self) -> list[str]:
        run = str(self.layout.runtime_dir)
        errors = "stderr" if self.layout.error_log_to_stderr else str(self.layout.error_log)
        return [self.binary, "-p", run, "-e", errors, "-c", str(self.layout.conf_path)]

    @property
    def pid(self) -> int | None:
        process = self._process
        return None if process is None or process.poll() is not None else process.pid

    def check(self) -> None:
        """Write the configuration and have nginx test it (raises LayoutError with its words)."""
        self.layout.write()
        done = subprocess.run(  # noqa: S603 - our own binary and arguments
            [*self.args, "-t", "-q"], capture_output=True, text=True, timeout=30, check=False
        )
        if done.returncode != 0:
            reason = redact(done.stderr.strip())
            raise LayoutError(f"nginx refused the generated configuration: {reason}")

    def start(self) -> None:
        """Check the configuration and the ports (raises LayoutError: what to change), then
        start nginx and the thread that restarts it."""
        self.check()
        self._stop_stale()
        check_ports(self.layout, api_port=self.api_port)  # not for ever "Address already in use"
        self._stopping.clear()
        self._spawn()
        self._thread = threading.Thread(target=self._watch, name="media-server", daemon=True)
        self._thread.start()

    def _spawn(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            self._process = subprocess.Popen(  # noqa: S603
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE if self.layout.error_log_to_stderr else subprocess.DEVNULL,
                preexec_fn=_preexec,  # only setpgrp and prctl
            )
            try:
                self._log_start = self.layout.error_log.stat().st_size
            except OSError:
                self._log_start = 0
            if self._process.stderr is not None:
                self._pump = threading.Thread(
                    target=_pump,
                    args=(self._process.stderr, self.layout.error_log),
                    name="media-server-log",
                    daemon=True,
                )
                self._pump.start()
            log.info(
                "media_server_started",
                pid=self._process.pid,
                rtmp=f"{self.layout.listen_host}:{self.layout.rtmp_port}",
                http=self.layout.http_url,
                config=str(self.layout.conf_path),
            )

    def _watch(self) -> None:
        delay = self.backoff_seconds
        while not self._stopping.is_set():
            process = self._process
            if process is None:
                return
            started = time.monotonic()
            code = process.wait()
            if self._stopping.is_set():
                return
            _kill_group(process.pid)  # its workers, which outlive a master that crashed
            if time.monotonic() - started >= _STABLE_SECONDS:
                delay = self.backoff_seconds
            if self._pump is not None:
                self._pump.join(2)  # its last lines: why it exited
            said = self._run_log()
            log.error(
                "media_server_exited",
                pid=process.pid,
                exit_status=code,
                restart_in_seconds=delay,
                error_log=said[-600:],
            )
            taken = taken_port(self.layout, said)
            if taken is not None:
                log.error("media_server_port_taken", reason=taken, restart_in_seconds=delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, self.backoff_max_seconds)
            self.restarts += 1
            try:
                self._spawn()
            except OSError:
                log.exception("media_server_start_failed")

    def _run_log(self) -> str:
        """What the last nginx run wrote to logs/error.log (its last 8 KB)."""
        try:
            with self.layout.error_log.open("rb") as f:
                f.seek(max(self._log_start, f.seek(0, 2) - 8192))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """Stop nginx by its pid: graceful (QUIT), then TERM, then KILL."""
        self._stopping.set()
        with self._lock:
            process = self._process
        if process is not None and process.poll() is None:
            for sig, wait in ((signal.SIGQUIT, timeout / 2), (signal.SIGTERM, timeout / 2)):
                process.send_signal(sig)
                try:
                    process.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            else:
                process.kill()
                process.wait()
            _kill_group(process.pid)
            log.info("media_server_stopped", pid=process.pid)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _stop_stale(self) -> None:
        """A master left by a run that was killed: stop it when its command line is ours."""
        pid = _read_pid(self.layout.pid_path)
        if pid is None:
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return
        if str(self.layout.conf_path).encode() not in cmdline:
            return
        log.warning("media_server_stale", pid=pid)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.05)


# A stream key, as an ingest stream name (`notify: push 'sk_...' to ...`).
_STREAM_KEY = re.compile(r"sk_[A-Za-z0-9_-]{8,}")


def redact(line: str) -> str:
    return _STREAM_KEY.sub("sk_" + REDACTED, redact_text(line))


def _pump(stream: IO[bytes], path: Path) -> None:
    """nginx's error log, from its stderr to the file, without stream keys and tokens."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with stream, path.open("a", encoding="utf-8") as out:
        for raw in stream:
            out.write(redact(raw.decode("utf-8", "replace")))
            out.flush()


def _kill_group(pgid: int) -> None:
    """nginx's master leads its own process group (setpgrp); its workers are in it."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None
