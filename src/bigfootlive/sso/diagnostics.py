"""The connection test of an SSO provider (the admin's /test): each protocol's checks, audited."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.authz.deps import AuthSubject
from bigfootlive.deps import RequestMeta
from bigfootlive.errors import BigfootError
from bigfootlive.identity import audit
from bigfootlive.sso import repository as repo
from bigfootlive.sso.provider import ProviderNotFound, load
from bigfootlive.sso.schemas import Check, TestOut
from bigfootlive.state import AppState


async def test_provider(
    state: AppState,
    session: AsyncSession,
    meta: RequestMeta,
    subject: AuthSubject,
    provider_id: uuid.UUID,
    sample_username: str | None,
) -> TestOut:
    row = await repo.get_provider(session, subject.tenant_id, provider_id)
    if row is None:
        raise ProviderNotFound()
    loaded = load(row)
    cfg = loaded.config
    checks: list[Check] = []
    try:
        checks += await loaded.protocol.diagnose(state, row, cfg, sample_username)
    except BigfootError as exc:
        checks.append(Check(name="error", ok=False, detail=exc.message))
    ok = bool(checks) and all(c.ok for c in checks)
    await audit.record(
        session,
        action="sso.provider_test",
        meta=meta,
        tenant_id=subject.tenant_id,
        actor_id=subject.user_id,
        result="success" if ok else "failure",
        target_type="sso_provider",
        target_id=row.id,
        details={"failed": [c.name for c in checks if not c.ok]},
    )
    return TestOut(ok=ok, protocol=row.protocol, checks=checks)
