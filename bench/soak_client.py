"""The soak's accounts as a real API client keeps them: signed in once, then kept signed in.

An access token lives `ACCESS_TOKEN_TTL_SECONDS` (900 s by default), less than a soak. A client
does not sign in again when it runs out: it uses the refresh token it was given (`POST
/api/auth/refresh`, which rotates it) a little before the access token expires, and once more
if a request is refused with 401 anyway (a clock step, a token revoked). Before this, the soak
signed every account in once at the start and used those tokens for the whole run: from minute
15 every read was a 401 and every viewer that reconnected was closed with 4401, which counted
as failures of the platform what was the load generator's.

A refresh token may be used once (a second use ends the session as a theft), so refreshes of
one account are serialised, and a caller holding a token someone else already replaced takes the
new one instead of refreshing again.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

PASSWORD = "plausible-tundra-velvet-42"
TENANT = "soak"
USERS = 50  # viewers + the streamer's and admin's accounts come on top

# Refresh when less than this share of the access token's lifetime is left (as the web app's
# own clients do it: early enough that a request in flight does not carry an expired token).
REFRESH_WHEN_LEFT = 0.2


async def seed(database_url: str, jwt_secret: str) -> None:
    """Tenant, admin, streamer and viewers (cheap argon2: the soak is not a login benchmark)."""
    from bigfootlive.authz.roles import Role
    from bigfootlive.composition import AppState
    from bigfootlive.config import Settings
    from bigfootlive.identity import accounts
    from bigfootlive.tenants import service as tenants
    from bigfootlive.tenants.schemas import TenantSettings

    settings = Settings(
        _env_file=None, database_url=database_url, jwt_secret=jwt_secret,
        argon2_memory_kib=1024, argon2_time_cost=1,
    )  # fmt: skip
    state = AppState.build(settings)
    try:
        async with state.db.transaction() as session:
            tenant = await tenants.create_tenant(
                session, slug=TENANT, name="Soak", settings=TenantSettings(), email_domains=[]
            )
            for i in range(USERS + 2):
                role = Role.ADMIN if i == 0 else Role.STREAMER if i == 1 else Role.VIEWER
                await accounts.create_account(
                    state, session, tenant=tenant, email=_email(i), display_name=f"Soak {i}",
                    role=role, password=PASSWORD, email_verified=True,
                )  # fmt: skip
    finally:
        await state.close()


def _email(i: int) -> str:
    return f"user{i:03d}@soak.example"


def credentials(i: int) -> dict[str, str]:
    return {"tenant": TENANT, "email": _email(i), "password": PASSWORD}


@dataclass
class _Pair:
    access: str
    refresh: str
    expires_at: float  # time.monotonic()
    lifetime: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Accounts:
    """Token pairs by account index, refreshed before they expire.

    `count(kind, ok, status)` records each refresh (`token_refresh`) and each sign-in that a
    refused refresh made necessary (`sign_in_again`)."""

    def __init__(self, http: httpx.AsyncClient, credentials: Any, count: Any) -> None:
        self.http = http
        self.credentials = credentials  # index -> login body
        self.count = count
        self.pairs: dict[int, _Pair] = {}

    async def sign_in(self, i: int) -> str:
        response = await self.http.post("/api/auth/login", json=self.credentials(i))
        response.raise_for_status()
        self._keep(i, response.json())
        return self.pairs[i].access

    def _keep(self, i: int, body: dict[str, Any]) -> None:
        lifetime = float(body["expires_in"])
        lock = self.pairs[i].lock if i in self.pairs else asyncio.Lock()
        self.pairs[i] = _Pair(
            access=str(body["access_token"]),
            refresh=str(body["refresh_token"]),
            expires_at=time.monotonic() + lifetime,
            lifetime=lifetime,
            lock=lock,
        )

    def expires_soon(self, i: int) -> bool:
        pair = self.pairs[i]
        return pair.expires_at - time.monotonic() < pair.lifetime * REFRESH_WHEN_LEFT

    async def access(self, i: int) -> str:
        """The account's access token, refreshed first if it is about to expire."""
        if self.expires_soon(i):
            return await self.refresh(i, self.pairs[i].access)
        return self.pairs[i].access

    async def refresh(self, i: int, stale: str) -> str:
        """Replace `stale` (the access token the caller holds) with a fresh one, once."""
        pair = self.pairs[i]
        async with pair.lock:
            pair = self.pairs[i]
            if pair.access != stale and not self.expires_soon(i):
                return pair.access  # another caller refreshed it meanwhile
            try:
                response = await self.http.post(
                    "/api/auth/refresh", json={"refresh_token": pair.refresh}
                )
            except httpx.HTTPError:
                self.count("token_refresh", False, "error")
                return pair.access
            self.count("token_refresh", response.status_code < 400, response.status_code)
            if response.status_code < 400:
                self._keep(i, response.json())
            elif response.status_code in (400, 401):
                # the session ended (revoked, idle, reused): sign in again, as a client would
                try:
                    await self.sign_in(i)
                    self.count("sign_in_again", True, 200)
                except httpx.HTTPStatusError as exc:
                    self.count("sign_in_again", False, exc.response.status_code)
            return self.pairs[i].access

    async def get(self, i: int, url: str) -> httpx.Response:
        """GET with the account's token; after a 401, refresh once and try again."""
        token = await self.access(i)
        response = await self.http.get(url, headers={"Authorization": f"Bearer {token}"})
        if response.status_code == 401:
            self.count("read_401_then_refreshed", True, 401)
            token = await self.refresh(i, token)
            response = await self.http.get(url, headers={"Authorization": f"Bearer {token}"})
        return response


def close_code(exc: BaseException) -> int | None:
    """The close code of a WebSocket the server closed, else the one this side closed it with
    (1011: the client's keepalive ping went unanswered); None: refused or never opened."""
    for side in ("rcvd", "sent"):
        code = getattr(getattr(exc, side, None), "code", None)
        if code is not None:
            return int(code)
    return None
