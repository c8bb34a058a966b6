"""What the identity domain needs from the process state: the infrastructure and the
domain services below (`composition.AppState` provides them)."""

from __future__ import annotations

from typing import Protocol

from bigfootlive.identity.passwords import Passwords
from bigfootlive.identity.principals import PrincipalCache
from bigfootlive.identity.revocation import RevokedSessions
from bigfootlive.identity.tokens import TokenService
from bigfootlive.state import Infrastructure
from bigfootlive.tenants.cache import TenantCache


class IdentityState(Infrastructure, Protocol):
    passwords: Passwords
    tokens: TokenService
    revoked: RevokedSessions
    principals: PrincipalCache
    tenant_cache: TenantCache
