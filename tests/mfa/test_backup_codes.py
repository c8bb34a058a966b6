from __future__ import annotations

from sqlalchemy import select

from bigfootlive.models import MfaBackupCode
from tests.mfa.helpers import (
    audit_actions,
    enrol_totp,
    mfa_login,
    password_login,
    verify,
)


async def test_a_backup_code_signs_in_once(factory, client, state, smtp_sink):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    _, _, codes = await enrol_totp(client, ann)
    challenge = await password_login(client, ann)
    # Typed carelessly: upper case, no dash.
    typed = codes[0].replace("-", "").upper()
    done = await verify(client, challenge["challenge_token"], method="backup_code", code=typed)
    assert done.status_code == 200, done.text
    assert state.tokens.decode(done.json()["access_token"]).amr == ("pwd", "otp", "mfa")

    again = await password_login(client, ann)
    reused = await verify(client, again["challenge_token"], method="backup_code", code=codes[0])
    assert reused.status_code == 401
    listed = await client.get(
        "/api/auth/mfa/factors",
        headers={"Authorization": f"Bearer {done.json()['access_token']}"},
    )
    assert listed.json()["backup_codes_remaining"] == 9
    assert ("auth.mfa.backup_code_used", "success") in await audit_actions(state, ann.id)
    notices = await smtp_sink.wait_for(ann.user.email, count=2)
    assert any("backup code was used" in m["Subject"] for m in notices)


async def test_backup_codes_are_stored_hashed(factory, client, state):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    _, _, codes = await enrol_totp(client, ann)
    async with state.db.sessionmaker() as session:
        stored = (
            (
                await session.execute(
                    select(MfaBackupCode.code_hash).where(MfaBackupCode.tenant_id == tenant.id)
                )
            )
            .scalars()
            .all()
        )
    assert len(stored) == 10
    plain = {c.replace("-", "") for c in codes}
    assert not plain.intersection(stored)
    assert not any(c in h for c in plain for h in stored)


async def test_regenerated_backup_codes_replace_the_old_ones(factory, client):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    _, secret, old_codes = await enrol_totp(client, ann)
    await mfa_login(client, ann, secret)
    fresh = await client.post("/api/auth/mfa/backup-codes", headers=ann.headers)
    assert fresh.status_code == 200, fresh.text
    new_codes = fresh.json()["backup_codes"]
    assert len(new_codes) == 10
    assert not set(new_codes) & set(old_codes)

    challenge = await password_login(client, ann)
    stale = await verify(
        client, challenge["challenge_token"], method="backup_code", code=old_codes[1]
    )
    assert stale.status_code == 401
    ok = await verify(client, challenge["challenge_token"], method="backup_code", code=new_codes[1])
    assert ok.status_code == 200


async def test_backup_codes_need_a_factor(factory, client):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    response = await client.post("/api/auth/mfa/backup-codes", headers=ann.headers)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "no_factor"
