"""SMS codes through the Twilio-compatible provider, against a fake carrier API on loopback."""

from __future__ import annotations

import random
import re

import pytest
from structlog.testing import capture_logs

from bigfootlive.mfa.sms import LogSmsSender, SmsDeliveryError, TwilioSmsSender
from tests.mfa.fake_twilio import FakeTwilio
from tests.mfa.helpers import audit_actions, password_login, use_tokens, verify

PHONE = "+447700900123"


@pytest.fixture(scope="module")
def twilio():
    fake = FakeTwilio()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def settings_overrides(twilio):
    return {
        "sms_provider": "twilio",
        "twilio_account_sid": twilio.account_sid,
        "twilio_auth_token": twilio.auth_token,
        "twilio_from_number": twilio.from_number,
        "twilio_api_base_url": twilio.base_url,
    }


def _code(message):
    return re.search(r"\b(\d{6})\b", message["Body"]).group(1)


async def test_sms_enrolment_and_sign_in(factory, client, state, twilio):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    phone = f"+4477009{random.randint(0, 99_999):05d}"
    setup = await client.post(
        "/api/auth/mfa/setup",
        json={"type": "sms", "name": "Work phone", "phone": phone},
        headers=ann.headers,
    )
    assert setup.status_code == 201, setup.text
    assert phone not in setup.json()["code_sent_to"]
    [enrol_message] = twilio.wait_for(phone)
    assert enrol_message["From"] == twilio.from_number
    confirm = await client.post(
        "/api/auth/mfa/setup/confirm",
        json={"factor_id": setup.json()["factor"]["id"], "code": _code(enrol_message)},
        headers=ann.headers,
    )
    assert confirm.status_code == 200, confirm.text

    challenge = await password_login(client, ann)
    assert challenge["methods"] == ["sms", "backup_code"]
    sent = await client.post(
        "/api/auth/mfa/challenge",
        json={
            "challenge_token": challenge["challenge_token"],
            "factor_id": setup.json()["factor"]["id"],
        },
    )
    assert sent.status_code == 200, sent.text
    login_message = twilio.wait_for(phone, count=2)[1]
    done = await verify(
        client, challenge["challenge_token"], method="sms", code=_code(login_message)
    )
    assert done.status_code == 200, done.text
    assert state.tokens.decode(done.json()["access_token"]).amr == ("pwd", "sms", "mfa")
    use_tokens(ann, done.json())
    assert (await client.get("/api/auth/me", headers=ann.headers)).status_code == 200
    assert ("auth.mfa.code_sent", "success") in await audit_actions(state, ann.id)


async def test_sms_setup_needs_an_e164_number(factory, client):
    tenant = await factory.tenant()
    ann = await factory.user(tenant)
    bad = await client.post(
        "/api/auth/mfa/setup", json={"type": "sms", "phone": "07700 900123"}, headers=ann.headers
    )
    assert bad.status_code == 422


async def test_twilio_sender_posts_the_message_form(twilio):
    sender = TwilioSmsSender(
        account_sid=twilio.account_sid,
        auth_token=twilio.auth_token,
        from_number=twilio.from_number,
        base_url=twilio.base_url,
    )
    await sender.send("+15005550010", "hello 123456")
    assert twilio.wait_for("+15005550010")[0]["Body"] == "hello 123456"


async def test_twilio_sender_reports_a_refusal(twilio):
    sender = TwilioSmsSender(
        account_sid=twilio.account_sid,
        auth_token="wrong-token",
        from_number=twilio.from_number,
        base_url=twilio.base_url,
    )
    with pytest.raises(SmsDeliveryError, match="401"):
        await sender.send("+15005550011", "hello")


async def test_log_sender_hides_the_code_in_production():
    with capture_logs() as logs:
        await LogSmsSender(reveal_body=False).send(PHONE, "BigfootLive code: 654321")
        await LogSmsSender(reveal_body=True).send(PHONE, "BigfootLive code: 123456")
    assert "654321" not in repr(logs[0])
    assert PHONE not in repr(logs[0])
    assert "123456" in repr(logs[1])
