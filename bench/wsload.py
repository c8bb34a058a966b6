"""The fan-out benchmark's viewers: bench/wsviewers.c compiled and driven over its stdin and
stdout, and the /proc readings of the processes measured (bench_fanout.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def build_viewers(workdir: Path) -> Path:
    """Compile bench/wsviewers.c (the viewers' epoll loop) into `workdir`."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise SystemExit("bench_fanout needs a C compiler (apt install gcc) for bench/wsviewers.c")
    binary = workdir / "wsviewers"
    subprocess.run(
        [compiler, "-O2", "-o", str(binary), str(ROOT / "bench" / "wsviewers.c")], check=True
    )
    return binary


class ViewerProcess:
    """One wsviewers process: `count` viewer connections, controlled over its stdin/stdout."""

    def __init__(self, binary: Path, peer: Any, count: int, probe_every: int, offset: int) -> None:
        self.proc = subprocess.Popen(
            [
                str(binary),
                peer.kind,
                peer.path,
                str(count),
                str(probe_every),
                str(offset),
                *(str(port) for port in peer.ports),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"wsviewers exited with {self.proc.wait()}")
        result: dict[str, Any] = json.loads(line)
        return result

    def tell(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def finish(self) -> dict[str, Any]:
        self.tell("stop")
        result = self.read()
        self.proc.wait(30)
        return result


# --- servers -------------------------------------------------------------------------------------


def proc_cpu_seconds(pid: int) -> float:
    return sum(proc_cpu_split(pid))


def proc_cpu_split(pid: int) -> tuple[float, float]:
    """CPU seconds of `pid` in user space and in the kernel (its system calls)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def proc_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0
