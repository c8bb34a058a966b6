"""The connection test of an SSO provider (the admin's /test): each protocol's checks, audited."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.audit import AuditAction, AuditLog
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.errors import BigfootError
from bigfootlive.identity.ports import IdentityState
from bigfootlive.kit.request import RequestMeta
from bigfootlive.sso import repository as repo
from bigfootlive.sso.provider import ProviderNotFound, load
from bigfootlive.sso.schemas import Check, TestOut


async def test_provider(
    state: IdentityState,
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
    await AuditLog(session, meta, subject.user_id).record(
        AuditAction.SSO_PROVIDER_TEST,
        tenant_id=subject.tenant_id,
        result="success" if ok else "failure",
        target_type="sso_provider",
        target_id=row.id,
        details={"failed": [c.name for c in checks if not c.ok]},
    )
    return TestOut(ok=ok, protocol=row.protocol, checks=checks)
