"""Emailed/texted one-time codes and backup codes."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from bigfootlive.kit.crypto import keyed_hash

BACKUP_CODE_COUNT = 10
_BACKUP_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud and typed


def one_time_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def code_digest(scope: str, code: str) -> str:
    return hashlib.sha256(f"{scope}:{code.strip()}".encode()).hexdigest()


def new_backup_codes() -> list[str]:
    """Ten codes like `k7m2p-x9qrt` (about 49 bits each)."""
    out = []
    for _ in range(BACKUP_CODE_COUNT):
        raw = "".join(secrets.choice(_BACKUP_ALPHABET) for _ in range(10))
        out.append(f"{raw[:5]}-{raw[5:]}")
    return out


def normalise_backup_code(code: str) -> str:
    return "".join(c for c in code.lower() if c.isalnum())


def _pepper(key: bytes) -> bytes:
    return hashlib.sha256(b"bfl-backup-code" + key).digest()


def backup_code_hash(key: bytes, user_id: uuid.UUID, code: str) -> str:
    """HMAC keyed by a secret derived from the data key: a stolen table alone cannot be guessed."""
    return keyed_hash(_pepper(key), f"{user_id}:{normalise_backup_code(code)}")


def backup_code_candidates(keys: list[bytes], user_id: uuid.UUID, code: str) -> list[str]:
    """The code's hash under every data key still configured (codes survive key rotation)."""
    return [backup_code_hash(k, user_id, code) for k in keys]
