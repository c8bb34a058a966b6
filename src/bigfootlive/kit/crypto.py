"""Secrets at rest (AES-256-GCM with versioned keys), token hashing and random tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_PREFIX = "v1"


class DecryptionError(Exception):
    pass


class SecretBox:
    """Encrypts with the newest key, decrypts with any key still listed (rotation).

    Ciphertext: ``v1:<key index fingerprint>:<base64url(nonce | ciphertext+tag)>``.
    `context` binds a ciphertext to where it is stored (e.g. "sso:<provider id>"), so one
    cannot be copied into another row and decrypt there.
    """

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("at least one key is required")
        self._keys = {_fingerprint(k): AESGCM(k) for k in keys}
        self._current = _fingerprint(keys[0])

    @property
    def current(self) -> str:
        """The fingerprint of the key new ciphertexts are written with."""
        return self._current

    def key_of(self, token: str) -> str | None:
        """The fingerprint of the key `token` was written with, when that key is configured."""
        parts = token.split(":", 2)
        return parts[1] if len(parts) == 3 and parts[1] in self._keys else None

    def encrypt(self, plaintext: str, *, context: str = "") -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._keys[self._current].encrypt(nonce, plaintext.encode(), context.encode())
        blob = base64.urlsafe_b64encode(nonce + sealed).decode()
        return f"{_PREFIX}:{self._current}:{blob}"

    def decrypt(self, token: str, *, context: str = "") -> str:
        try:
            prefix, fingerprint, blob = token.split(":", 2)
            raw = base64.urlsafe_b64decode(blob)
            key = self._keys[fingerprint]
        except (ValueError, KeyError) as exc:
            raise DecryptionError("unknown ciphertext format or key") from exc
        if prefix != _PREFIX:
            raise DecryptionError("unknown ciphertext version")
        try:
            return key.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag as exc:
            raise DecryptionError("ciphertext does not authenticate") from exc


def _fingerprint(key: bytes) -> str:
    return hashlib.sha256(b"bfl-key-id" + key).hexdigest()[:8]


def random_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def hash_token(token: str) -> str:
    """Digest for high-entropy tokens (refresh, reset, API keys): fast, as guessing is hopeless."""
    return hashlib.sha256(token.encode()).hexdigest()


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256 for looking up a secret by value without storing it in the clear."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
