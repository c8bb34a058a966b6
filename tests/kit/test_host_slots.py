"""Host slots: at most `count` holders at once, across threads of one process and across
processes; a dead process's slot is free again; password hashing waits for a slot."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from bigfootlive.config import Settings
from bigfootlive.identity.passwords import Passwords
from bigfootlive.kit.host_slots import HostSlots

_HOLD = """
import sys, time
from bigfootlive.kit.host_slots import HostSlots
slots = HostSlots(sys.argv[1], int(sys.argv[2]))
with slots.held() as slot:
    print(slot, time.time(), flush=True)
    time.sleep(float(sys.argv[3]))
    print(slot, time.time(), flush=True)
"""


def _holders_at_once(slots: HostSlots, threads: int, hold: float) -> int:
    lock = threading.Lock()
    now = most = 0

    def hold_one() -> None:
        nonlocal now, most
        with slots.held():
            with lock:
                now += 1
                most = max(most, now)
            time.sleep(hold)
            with lock:
                now -= 1

    workers = [threading.Thread(target=hold_one) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return most


def test_threads_of_one_process_hold_at_most_count_slots(tmp_path: Path) -> None:
    assert _holders_at_once(HostSlots(tmp_path, 2), threads=6, hold=0.05) == 2
    assert _holders_at_once(HostSlots(tmp_path, 1), threads=3, hold=0.02) == 1


def test_processes_sharing_the_directory_take_turns(tmp_path: Path) -> None:
    def run(count: int) -> list[tuple[float, float]]:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _HOLD, str(tmp_path / str(count)), str(count), "0.3"],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        spans = []
        for proc in procs:
            out, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0
            (_, start), (_, end) = (line.split() for line in out.splitlines())
            spans.append((float(start), float(end)))
        return sorted(spans)

    (_, first_end), (second_start, _) = run(1)
    assert second_start >= first_end  # one slot: the second held it after the first let go
    (_, first_end), (second_start, _) = run(2)
    assert second_start < first_end  # two slots: both held one at once


def test_the_slot_of_a_killed_process_is_free_again(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(tmp_path), "1", "60"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        holder.stdout.readline()  # it holds the one slot
        slots = HostSlots(tmp_path, 1)
        taken = threading.Event()

        def take() -> None:
            with slots.held():
                taken.set()

        waiter = threading.Thread(target=take, daemon=True)
        waiter.start()
        assert not taken.wait(0.3)
        holder.kill()
        assert taken.wait(10)
    finally:
        holder.kill()
        holder.wait()


async def test_passwords_hash_only_in_a_slot_and_use_every_core_by_default(
    tmp_path: Path,
) -> None:
    settings = Settings(
        password_hash_slots_dir=str(tmp_path), password_hash_slots=1, argon2_memory_kib=1024
    )
    passwords = Passwords(settings)
    try:
        assert passwords.threads == 1  # one per slot
        every_core = Passwords(Settings(password_hash_slots_dir=str(tmp_path)))
        assert every_core.threads == (os.cpu_count() or 1)
        every_core.close()
        other = HostSlots(tmp_path, 1)  # another process's hash, in the one slot
        release, held = threading.Event(), threading.Event()

        def hold() -> None:
            with other.held():
                held.set()
                release.wait(30)

        holder = threading.Thread(target=hold)
        holder.start()
        held.wait(10)
        hashing = asyncio.ensure_future(passwords.hash("plausible-tundra-velvet-42"))
        await asyncio.sleep(0.3)
        assert not hashing.done()  # waits for the slot
        release.set()
        stored = await asyncio.wait_for(hashing, 30)
        holder.join()
        assert await passwords.verify(stored, "plausible-tundra-velvet-42") == (True, False)
    finally:
        passwords.close()
