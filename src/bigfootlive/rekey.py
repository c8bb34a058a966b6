"""Key rotation for secrets at rest: `bigfootlive keys status` and `bigfootlive keys reencrypt`.

Every ciphertext the platform stores (TOTP seeds, webhook signing secrets, SSO client secrets
and bind passwords, stream keys) is rewritten under the first key of ENCRYPTION_KEYS (or the
key derived from JWT_SECRET), and the stream keys' lookup hashes are recomputed with it. Rows
already under the current key are left alone, so the command can run again (or be stopped and
restarted) while the application serves: a row is read, decrypted and rewritten in one short
transaction, and a row written meanwhile by the application is already under the new key.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.config import Settings
from bigfootlive.db import Database
from bigfootlive.events.keys import stream_key_hashes
from bigfootlive.kit.crypto import DecryptionError, SecretBox
from bigfootlive.models import Event, MfaFactor, SsoProvider, WebhookEndpoint

_BATCH = 200


@dataclass
class KeyReport:
    """Ciphertexts by where they stand: under the current key, under an older listed key, or
    unreadable with the configured keys (a key is missing: see docs/operations.md)."""

    current: int = 0
    older: int = 0
    rewritten: int = 0
    unreadable: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "older": self.older,
            "rewritten": self.rewritten,
            "unreadable": len(self.unreadable),
            "unreadable_rows": self.unreadable[:50],
        }


@dataclass
class _Sealed:
    """One stored ciphertext: where it is, its context, and how to put a new one there."""

    where: str
    token: str
    context: str
    store: Callable[[str, str], None]  # (new ciphertext, plaintext)


async def _ids(session: AsyncSession, model: Any, after: uuid.UUID | None) -> list[uuid.UUID]:
    query = select(model.id).order_by(model.id).limit(_BATCH)
    if after is not None:
        query = query.where(model.id > after)
    # unscoped: key rotation rewrites every tenant's secrets (an operator's command)
    return list((await session.scalars(query)).all())


def _sealed(row: Any, settings: Settings) -> list[_Sealed]:
    if isinstance(row, MfaFactor):
        if not row.secret_ciphertext:
            return []

        def store_factor(token: str, _: str) -> None:
            row.secret_ciphertext = token

        return [
            _Sealed(
                f"mfa_factors/{row.id}", row.secret_ciphertext, f"mfa-totp:{row.id}", store_factor
            )
        ]
    if isinstance(row, WebhookEndpoint):

        def store_webhook(token: str, _: str) -> None:
            row.secret_encrypted = token

        return [
            _Sealed(
                f"webhook_endpoints/{row.id}",
                row.secret_encrypted,
                f"webhook:{row.id}",
                store_webhook,
            )
        ]
    if isinstance(row, Event):

        def store_key(token: str, plaintext: str) -> None:
            row.stream_key_ciphertext = token
            row.stream_key_hash = stream_key_hashes(settings, plaintext)[0]

        return [
            _Sealed(
                f"events/{row.id}",
                row.stream_key_ciphertext,
                f"event-stream-key:{row.id}",
                store_key,
            )
        ]
    if isinstance(row, SsoProvider):
        out: list[_Sealed] = []
        for name, token in sorted((row.secrets or {}).items()):

            def store_sso(new: str, _: str, name: str = name) -> None:
                row.secrets = {**row.secrets, name: new}

            where, context = f"sso_providers/{row.id}/{name}", f"sso:{row.id}:{name}"
            out.append(_Sealed(where, str(token), context, store_sso))
        return out
    return []


async def _rows(db: Database, model: Any) -> AsyncIterator[uuid.UUID]:
    after: uuid.UUID | None = None
    while True:
        async with db.transaction() as session:
            ids = await _ids(session, model, after)
        if not ids:
            return
        for row_id in ids:
            yield row_id
        after = ids[-1]


async def scan(db: Database, settings: Settings, *, rewrite: bool) -> KeyReport:
    """Counts (and with `rewrite`, moves to the current key) every stored ciphertext."""
    box = SecretBox(settings.data_keys)
    report = KeyReport()
    for model in (MfaFactor, WebhookEndpoint, SsoProvider, Event):
        async for row_id in _rows(db, model):
            async with db.transaction() as session:
                # unscoped: key rotation rewrites every tenant's secrets (an operator's command)
                row = await session.get(model, row_id, with_for_update=rewrite)
                if row is None:
                    continue
                for sealed in _sealed(row, settings):
                    fingerprint = box.key_of(sealed.token)
                    if fingerprint == box.current:
                        report.current += 1
                        continue
                    try:
                        plaintext = box.decrypt(sealed.token, context=sealed.context)
                    except DecryptionError:
                        report.unreadable.append(sealed.where)
                        continue
                    report.older += 1
                    if rewrite:
                        sealed.store(box.encrypt(plaintext, context=sealed.context), plaintext)
                        report.rewritten += 1
    return report
