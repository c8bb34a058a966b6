"""A limit on how many threads of all the processes of one host do something at once: `count`
lock files in one directory, each held (`flock`) by at most one thread at a time.

Why: the API's worker processes each hash passwords in a pool of threads. Sized by the cores
divided among the processes, a process that happened to get every keep-alive connection hashed
on its share alone while the other cores idled; sized by all the cores in every process, the
host ran more hashes at once than it has cores (each argon2 hash walks 19 MiB, more than the
caches hold for two). With the slots, every process may use every core, and the host never
hashes more than `count` passwords at once.

`flock` locks belong to an open file description, so each thread opens the files for itself:
two threads of one process exclude each other as two processes do (POSIX `fcntl` record locks
would not: they belong to the process). The kernel lets a lock go when its process dies, so a
crashed worker cannot keep a slot.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import threading
from collections.abc import Iterator
from pathlib import Path


class _ThreadFiles:
    """One thread's descriptors of the slot files, closed when the thread ends."""

    __slots__ = ("fds", "preferred")

    def __init__(self, paths: list[Path], preferred: int) -> None:
        self.fds = [os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600) for path in paths]
        self.preferred = preferred

    def __del__(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)


class HostSlots:
    """`count` slots shared by every process that opens the same `directory`."""

    def __init__(self, directory: str | os.PathLike[str], count: int) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.count = count
        self._paths = [self.directory / f"slot-{i}.lock" for i in range(count)]
        self._local = threading.local()
        # Each thread starts its search at a slot of its own (offset by the process id, so the
        # first threads of two processes do not both start at slot 0).
        self._next = itertools.count(os.getpid())

    def _files(self) -> _ThreadFiles:
        files: _ThreadFiles | None = getattr(self._local, "files", None)
        if files is None:
            files = self._local.files = _ThreadFiles(self._paths, next(self._next) % self.count)
        return files

    @contextlib.contextmanager
    def held(self) -> Iterator[int]:
        """Blocks this thread until it holds a slot (the first free one from its own; when
        none is free, it waits for its own); yields the slot's number."""
        files = self._files()
        slot = None
        for k in range(self.count):
            i = (files.preferred + k) % self.count
            try:
                fcntl.flock(files.fds[i], fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            slot = i
            break
        if slot is None:
            slot = files.preferred
            fcntl.flock(files.fds[slot], fcntl.LOCK_EX)
        try:
            yield slot
        finally:
            fcntl.flock(files.fds[slot], fcntl.LOCK_UN)
