"""The API process's side of the worker template (template.py): starts it, asks it for
workers, and hears from it when one ends.

The template takes as long to start as a worker did (an interpreter and its imports): until it
says it is ready, the runtime starts workers the old way (`ready` is False) while it warms up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

import structlog

from bigfootlive.kit import jsonparse

log = structlog.get_logger(__name__)

ExitHandler = Callable[[int, int], None]  # (pid, exit code)


class WorkerTemplate:
    def __init__(
        self, on_exit: ExitHandler, stderr: Path, settings_file: Path | None = None
    ) -> None:
        self.on_exit = on_exit
        self.stderr = stderr
        self.settings_file = settings_file  # the workers' (parsed once, by the template)
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._answers: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._starting: asyncio.Task[None] | None = None
        self.ready = False

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    def warm(self) -> None:
        """Start the template in the background unless it runs or is starting."""
        if self.running or (self._starting is not None and not self._starting.done()):
            return
        self._starting = asyncio.create_task(self.start(), name="worker-template-start")

    async def start(self) -> None:
        """Start the template (it imports everything a worker needs) unless it runs."""
        if self.running:
            return
        with self.stderr.open("ab") as errors:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bigfootlive.containers.template",
                *(["--settings-file", str(self.settings_file)] if self.settings_file else []),
                "-" * 512,  # room for the workers' process titles
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=errors,
            )
        self._answers = asyncio.Queue()
        self.ready = False
        self._reader = asyncio.create_task(self._read(self._process), name="worker-template")

    async def spawn(self, argv: list[str], log_path: Path, memory: int) -> int:
        """Fork a worker running `bigfootlive <argv>`; its pid."""
        async with self._lock:
            process = self._process
            if not self.ready or process is None or process.stdin is None:
                raise RuntimeError("the worker template is not running")
            request = {"argv": argv, "log": str(log_path), "memory": memory}
            process.stdin.write(json.dumps(request).encode() + b"\n")
            await process.stdin.drain()
            answer = await asyncio.wait_for(self._answers.get(), timeout=30)
        pid = answer.get("pid")
        if not isinstance(pid, int):
            raise RuntimeError(f"the worker template refused: {answer.get('error')}")
        return pid

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        if process.stdout is None:
            return
        while line := await process.stdout.readline():
            try:
                message = jsonparse.loads(line)
            except ValueError:
                continue
            if "exited" in message:
                self.on_exit(int(message["exited"]), int(message["code"]))
            elif "ready" in message:
                self.ready = True
            else:
                self._answers.put_nowait(message)
        self.ready = False
        self._answers.put_nowait({"error": "the worker template exited"})

    async def close(self) -> None:
        """Stop the template; its workers keep running (they are stopped, or adopted, apart)."""
        if self._starting is not None and not self._starting.done():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._starting
        process, self._process = self._process, None
        if process is None:
            return
        # Its workers are in sessions of their own and their exits were reported (the runtime
        # stopped them first, or leaves them to be adopted): nothing is lost by not waiting.
        self.ready = False
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        if process.stdin is not None:
            process.stdin.close()
        await process.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reader, timeout=2)
