"""First pages of the member list (`GET /api/tenant/users`), kept in the process as the
response's bytes, checked on every request against the tenant's members stamp.

The member list's first page is read far more often than the members change, and reading it
is a database round trip plus 50 rows turned into ~11 KB of JSON, most of the request's cost.
This keeps the body per tenant and query shape (limit, role filter, active filter: a first
page, no search, no cursor), with the stamp it was read under. The stamp,
`principal:members:<tenant>`, is read in the round trip the request already makes to check
its session (`PrincipalCache.subject_and`): a page is answered from here only while that stamp
is the same, so there is no extra round trip for a hit.

The stamp is rewritten (identity.principals) after every commit that wrote a `User` row of the
tenant: an account created, invited, provisioned by SSO, its role, status, profile, email
verification or sign-in time changed, deleted, through the ORM (found in the flush) or a Core
statement (which says so itself: `principals.user_rows_written`, `members_changed`). The writer
rewrites it before its response is sent, so the very next request on any process sharing the
cache misses and reads the page again. The order makes a stale page impossible to keep under
a current stamp: a request reads the stamp before it reads the rows, a writer commits before
it rewrites the stamp; a page read before a commit is kept under the stamp read before it,
which the writer replaces. An absent stamp (never written, expired, a cache restart) is created
after the read with `add`, which fails, and keeps nothing, if a writer wrote one meanwhile.
Pages also expire after the principal TTL (`AUTH_PRINCIPAL_TTL_SECONDS`, 0: nothing kept),
which bounds a change made behind the application's back (psql).

Tenants never share an entry: the key is the tenant of the verified token, whose principal
was checked against it, and the rows were read in that tenant's row scope.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from bigfootlive.kit.backends.base import Cache

STAMP_TTL = 7 * 24 * 3600.0  # as the principal stamps: an expired stamp only costs a read
MAX_PAGES = 1024  # ~11 KB each at 50 members: ~11 MB at most
Shape = tuple[int, str | None, bool | None]  # limit, role filter, active filter


def members_stamp_key(tenant_id: uuid.UUID) -> str:
    return f"principal:members:{tenant_id}"


@dataclass(frozen=True, slots=True)
class _Page:
    body: bytes
    stamp: bytes
    loaded_at: float


class MemberPages:
    def __init__(self, cache: Cache, *, ttl: float, max_pages: int = MAX_PAGES) -> None:
        self.cache = cache
        self.ttl = ttl
        self.max_pages = max_pages
        self._pages: dict[tuple[uuid.UUID, Shape], _Page] = {}
        self._by_tenant: dict[uuid.UUID, set[Shape]] = {}

    def get(self, tenant_id: uuid.UUID, shape: Shape, stamp: bytes | None) -> bytes | None:
        """The page's body if it was read under `stamp` (the tenant's members stamp, read
        before this call) and not too long ago."""
        if stamp is None:
            return None
        page = self._pages.get((tenant_id, shape))
        if page is None or page.stamp != stamp or time.monotonic() - page.loaded_at >= self.ttl:
            return None
        return page.body

    async def keep(
        self, tenant_id: uuid.UUID, shape: Shape, stamp: bytes | None, body: bytes
    ) -> None:
        """Keep a page read after `stamp` was read (None: there was none; one is created,
        unless a writer made one meanwhile, and then nothing is kept)."""
        if self.ttl <= 0:
            return
        if stamp is None:
            stamp = secrets.token_hex(8).encode()
            if not await self.cache.add(members_stamp_key(tenant_id), stamp, ttl=STAMP_TTL):
                return
        key = (tenant_id, shape)
        if key not in self._pages and len(self._pages) >= self.max_pages:
            old_tenant, old_shape = next(iter(self._pages))  # the oldest
            self._drop(old_tenant, old_shape)
        self._pages.pop(key, None)  # re-inserted: the newest
        self._pages[key] = _Page(body, stamp, time.monotonic())
        self._by_tenant.setdefault(tenant_id, set()).add(shape)

    def _drop(self, tenant_id: uuid.UUID, shape: Shape) -> None:
        self._pages.pop((tenant_id, shape), None)
        shapes = self._by_tenant.get(tenant_id)
        if shapes is not None:
            shapes.discard(shape)
            if not shapes:
                del self._by_tenant[tenant_id]

    def forget(self, tenants: Iterable[uuid.UUID]) -> None:
        """Drop this process's pages of these tenants (their members changed)."""
        for tenant_id in tenants:
            for shape in self._by_tenant.pop(tenant_id, set()):
                self._pages.pop((tenant_id, shape), None)

    def cached(self, tenant_id: uuid.UUID) -> bool:
        """Whether this process keeps a page of the tenant (for tests and diagnostics)."""
        return tenant_id in self._by_tenant

    def clear(self) -> None:
        self._pages.clear()
        self._by_tenant.clear()

    def __len__(self) -> int:
        return len(self._pages)
