"""Password hashing (argon2id, OWASP parameters) in a bounded pool of its own, and the password
policy."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TypeVar

import bcrypt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bigfootlive.config import Settings
from bigfootlive.errors import ServiceUnavailable, Unprocessable
from bigfootlive.kit.host_slots import HostSlots

_T = TypeVar("_T")


class HashingBusy(ServiceUnavailable):
    code = "busy"
    message = "Too many sign-ins at once; try again in a moment"

    def __init__(self) -> None:
        super().__init__(retry_after=1)
        self.headers["Retry-After"] = "1"


def default_threads(settings: Settings) -> int:
    """The cores, shared among the API processes of this host; all of them when the host's
    slots (PASSWORD_HASH_SLOTS_DIR) bound the hashes of every process together."""
    if settings.password_hash_slots_dir:
        return settings.password_hash_slots or os.cpu_count() or 1
    return max(1, (os.cpu_count() or 1) // max(1, settings.web_concurrency))


class Passwords:
    """argon2id in a pool of its own, bounded: `threads` hash at once (argon2 releases the GIL,
    so they use as many cores), at most `max_waiting` more wait for one, and beyond that the
    caller gets HashingBusy (503, Retry-After: 1) at once instead of a queue that grows
    without bound. The threads run at a lower priority (`nice`) than the event loop, which
    therefore answers everything else (/health, reads) while a sign-in storm uses the rest.

    With PASSWORD_HASH_SLOTS_DIR, a thread hashes only while it holds one of the host's slots
    (`kit.host_slots`): the processes sharing the directory hash at most PASSWORD_HASH_SLOTS
    (the cores) passwords at once, and each has a thread per slot, so hashing capacity does
    not depend on which process the connections landed on."""

    def __init__(self, settings: Settings) -> None:
        self.hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            type=Type.ID,
        )
        self.threads = settings.password_hash_threads or default_threads(settings)
        self.max_waiting = settings.password_hash_max_waiting
        self._nice = settings.password_hash_nice
        self._pool = ThreadPoolExecutor(
            self.threads, thread_name_prefix="password-hash", initializer=self._lower_priority
        )
        self.in_flight = 0  # hashing or waiting for a thread (event loop only)
        slots_dir, slots = settings.password_hash_slots_dir, settings.password_hash_slots
        self._slots = HostSlots(slots_dir, slots or os.cpu_count() or 1) if slots_dir else None
        # Verified against for unknown accounts so both paths cost the same. Made on first use
        # (in the pool), once per process and parameters: one hash at the production parameters
        # is tens of milliseconds of CPU that every process (an event container's worker too)
        # and every app start (a test suite starts hundreds) would otherwise pay.
        self._params = (
            settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
        )  # fmt: skip

    def _dummy_hash(self) -> str:
        return _dummy_hash(*self._params)

    def _lower_priority(self) -> None:
        if self._nice:
            with contextlib.suppress(OSError, AttributeError):  # Linux: per thread
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._nice)

    async def _run(self, fn: Callable[..., _T], *args: object) -> _T:
        if self.in_flight >= self.threads + self.max_waiting:
            raise HashingBusy()
        self.in_flight += 1
        try:
            if self._slots is not None:
                args = (self._slots, fn, *args)
                fn = self._in_slot
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self.in_flight -= 1

    @staticmethod
    def _in_slot(slots: HostSlots, fn: Callable[..., _T], *args: object) -> _T:
        with slots.held():
            return fn(*args)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def hash(self, password: str) -> str:
        return await self._run(self.hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> tuple[bool, bool]:
        """(matches, needs_rehash). A bcrypt hash that matches always needs a rehash."""
        return await self._run(self._verify, stored_hash, password)

    def _verify(self, stored_hash: str | None, password: str) -> tuple[bool, bool]:
        if stored_hash is None:
            self._argon2_verify(self._dummy_hash(), password)
            return False, False
        if stored_hash.startswith(("$2a$", "$2b$", "$2y$")):
            try:
                ok = bcrypt.checkpw(password.encode()[:72], stored_hash.encode())
            except ValueError:
                return False, False
            return ok, ok
        if not self._argon2_verify(stored_hash, password):
            return False, False
        return True, self.hasher.check_needs_rehash(stored_hash)

    def _argon2_verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def matches_any(self, hashes: list[str], password: str) -> bool:
        for stored in hashes:
            ok, _ = await self.verify(stored, password)
            if ok:
                return True
        return False


@lru_cache(maxsize=8)
def _dummy_hash(time_cost: int, memory_kib: int, parallelism: int) -> str:
    """One per hashing parameters and process (two threads racing both make a valid hash)."""
    hasher = PasswordHasher(
        time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
    )
    return hasher.hash("not-a-real-password-timing-equaliser")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords, from the list the zxcvbn package ships."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def check_password_policy(
    password: str,
    *,
    min_length: int,
    require_upper: bool,
    require_lower: bool,
    require_digit: bool,
    require_symbol: bool,
    email: str = "",
) -> None:
    problems: list[str] = []
    if len(password) < min_length:
        problems.append(f"must be at least {min_length} characters")
    if len(password) > 128:
        problems.append("must be at most 128 characters")
    if require_upper and not any(c.isupper() for c in password):
        problems.append("must contain an upper-case letter")
    if require_lower and not any(c.islower() for c in password):
        problems.append("must contain a lower-case letter")
    if require_digit and not any(c.isdigit() for c in password):
        problems.append("must contain a digit")
    if require_symbol and all(c.isalnum() for c in password):
        problems.append("must contain a symbol")
    lowered = password.lower()
    if lowered in common_passwords():
        problems.append("is too common")
    local = email.split("@", 1)[0].lower()
    if len(local) >= 4 and local in lowered:
        problems.append("must not contain your email address")
    if problems:
        raise Unprocessable(
            "The password does not meet the policy", code="weak_password", problems=problems
        )
