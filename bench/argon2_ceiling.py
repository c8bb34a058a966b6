"""argon2id hashes/s and CPU per hash with the server's parameters: the login ceiling of
`bench_api`."""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor

from bigfootlive.config import Settings
from bigfootlive.identity.passwords import Passwords

PASSWORD = "correct-horse-battery-staple-42"  # any: the cost does not depend on it


def _hash_for(
    seconds: float, time_cost: int, memory_kib: int, parallelism: int
) -> tuple[int, float, float]:
    from argon2 import PasswordHasher, Type

    hasher = PasswordHasher(
        time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
    )
    done = 0
    cpu = time.process_time()
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        hasher.hash(PASSWORD)
        done += 1
    return done, time.process_time() - cpu, time.perf_counter() - start


def argon2_ceiling(
    settings: Settings, seconds: float, processes: int, *, nice: int = 0
) -> tuple[float, float]:
    """argon2id hashes/s with the server's parameters, one process per core, all cores busy;
    and the CPU milliseconds one hash takes. `nice`: the processes' nice value (the server's
    hashing pool runs at `PASSWORD_HASH_NICE`; on a machine that other work keeps busy, that
    priority alone sets how much of the cores the pool gets)."""
    params = Passwords(settings).hasher  # the exact hasher the server builds
    args = (seconds, params.time_cost, params.memory_cost, params.parallelism)
    with ProcessPoolExecutor(processes, initializer=os.nice, initargs=(nice,)) as pool:
        results = list(pool.map(_hash_for, *([a] * processes for a in args)))
    # Each process's rate over its own hashing window, summed: timed from the parent, the
    # window also held the processes' start (fork, import) and the results' way back, which
    # lowered the ceiling (by ~0.4 % in a 4 s run) and flattered the logins against it.
    done = sum(n for n, _, _ in results)
    return sum(n / wall for n, _, wall in results), 1000 * sum(c for _, c, _ in results) / max(
        done, 1
    )
