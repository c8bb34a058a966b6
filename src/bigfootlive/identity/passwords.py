"""Password hashing (argon2id, OWASP parameters) in worker threads, and the password policy."""

from __future__ import annotations

import asyncio
from functools import lru_cache

import bcrypt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bigfootlive.config import Settings
from bigfootlive.errors import Unprocessable


class Passwords:
    def __init__(self, settings: Settings) -> None:
        self.hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            type=Type.ID,
        )
        # Verified against for unknown accounts so both paths cost the same.
        self._dummy_hash = self.hasher.hash("not-a-real-password-timing-equaliser")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> tuple[bool, bool]:
        """(matches, needs_rehash). A bcrypt hash that matches always needs a rehash."""
        return await asyncio.to_thread(self._verify, stored_hash, password)

    def _verify(self, stored_hash: str | None, password: str) -> tuple[bool, bool]:
        if stored_hash is None:
            self._argon2_verify(self._dummy_hash, password)
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
