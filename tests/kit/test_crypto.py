from __future__ import annotations

import pytest

from bigfootlive.kit.crypto import DecryptionError, SecretBox

OLD, NEW = b"o" * 32, b"n" * 32


def test_round_trip_and_ciphertext_is_not_plaintext() -> None:
    box = SecretBox([NEW])
    sealed = box.encrypt("client-secret-value", context="sso:1")
    assert "client-secret-value" not in sealed
    assert box.decrypt(sealed, context="sso:1") == "client-secret-value"
    assert box.encrypt("x", context="a") != box.encrypt("x", context="a")  # random nonce


def test_old_key_still_decrypts_after_rotation_and_new_data_uses_the_new_key() -> None:
    sealed = SecretBox([OLD]).encrypt("seed", context="totp:1")
    rotated = SecretBox([NEW, OLD])
    assert rotated.decrypt(sealed, context="totp:1") == "seed"
    with pytest.raises(DecryptionError):
        SecretBox([OLD]).decrypt(rotated.encrypt("seed", context="totp:1"), context="totp:1")


def test_ciphertext_bound_to_its_context() -> None:
    box = SecretBox([NEW])
    sealed = box.encrypt("secret", context="sso:1")
    with pytest.raises(DecryptionError):
        box.decrypt(sealed, context="sso:2")


def test_tampered_ciphertext_is_refused() -> None:
    box = SecretBox([NEW])
    sealed = box.encrypt("secret")
    middle = len(sealed) - 20  # inside the ciphertext, clear of base64 padding bits
    flipped = sealed[:middle] + ("A" if sealed[middle] != "A" else "B") + sealed[middle + 1 :]
    for bad in (flipped, "v1:zzzz:abc", "garbage"):
        with pytest.raises(DecryptionError):
            box.decrypt(bad)
