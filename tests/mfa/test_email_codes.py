from __future__ import annotations

import re

from tests.fixtures.services import body_of
from tests.mfa.helpers import audit_actions, emailed_code, password_login, use_tokens, verify


async def _enrol_email(client, account, smtp_sink):
    setup = await client.post(
        "/api/auth/mfa/setup", json={"type": "email"}, headers=account.headers
    )
    assert setup.status_code == 201, setup.text
    assert setup.json()["code_sent_to"].endswith("@example.com")
    assert account.user.email not in setup.json()["code_sent_to"]  # masked
    code = await emailed_code(smtp_sink, account.user.email, count=1)
    confirm = await client.post(
        "/api/auth/mfa/setup/confirm",
        json={"factor_id": setup.json()["factor"]["id"], "code": code},
        headers=account.headers,
    )
    assert confirm.status_code == 200, confirm.text
    return setup.json()["factor"]["id"]


async def test_email_code_enrolment_and_sign_in_through_smtp(factory, client, state, smtp_sink):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    factor_id = await _enrol_email(client, ann, smtp_sink)
    # The "factor added" notice is the second email.
    await smtp_sink.wait_for(ann.user.email, count=2)

    challenge = await password_login(client, ann)
    assert challenge["status"] == "mfa_required"
    assert challenge["methods"] == ["email", "backup_code"]
    sent = await client.post(
        "/api/auth/mfa/challenge",
        json={"challenge_token": challenge["challenge_token"], "factor_id": factor_id},
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["expires_in"] <= state.settings.mfa_code_ttl_seconds
    messages = await smtp_sink.wait_for(ann.user.email, count=3)
    code = re.search(r"\b(\d{6})\b", body_of(messages[2])).group(1)
    assert "verification code" in messages[2]["Subject"]

    done = await verify(client, challenge["challenge_token"], method="email", code=code)
    assert done.status_code == 200, done.text
    assert state.tokens.decode(done.json()["access_token"]).amr == ("pwd", "otp", "mfa")
    use_tokens(ann, done.json())
    assert (await client.get("/api/auth/me", headers=ann.headers)).status_code == 200
    actions = await audit_actions(state, ann.id)
    assert ("auth.mfa.code_sent", "success") in actions
    assert ("auth.mfa.verify", "success") in actions


async def test_a_wrong_email_code_is_refused_and_the_right_one_still_works(
    factory, client, smtp_sink
):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    factor_id = await _enrol_email(client, ann, smtp_sink)
    challenge = await password_login(client, ann)
    await client.post(
        "/api/auth/mfa/challenge",
        json={"challenge_token": challenge["challenge_token"], "factor_id": factor_id},
    )
    code = await emailed_code(smtp_sink, ann.user.email, count=3)
    wrong = "000000" if code != "000000" else "111111"
    refused = await verify(client, challenge["challenge_token"], method="email", code=wrong)
    assert refused.status_code == 401
    assert refused.json()["error"]["attempts_left"] == 4
    ok = await verify(client, challenge["challenge_token"], method="email", code=code)
    assert ok.status_code == 200


async def test_an_email_code_for_one_challenge_does_not_open_another(factory, client, smtp_sink):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    factor_id = await _enrol_email(client, ann, smtp_sink)
    first = await password_login(client, ann)
    await client.post(
        "/api/auth/mfa/challenge",
        json={"challenge_token": first["challenge_token"], "factor_id": factor_id},
    )
    code = await emailed_code(smtp_sink, ann.user.email, count=3)
    second = await password_login(client, ann)
    crossed = await verify(client, second["challenge_token"], method="email", code=code)
    assert crossed.status_code == 401
