"""`kit.emails.PlainEmailStr` accepts, normalizes and refuses exactly as pydantic's `EmailStr`
(email-validator) does, over many inputs: plain addresses, near misses at every rule the fast
path encodes (lengths, dots, hyphens, top-level domains, special-use names, mailbox names
email-validator lower-cases, letter case) and random strings."""

from __future__ import annotations

import random
import string
from typing import Any

from pydantic import EmailStr, TypeAdapter, ValidationError

from bigfootlive.identity.schemas import LoginIn
from bigfootlive.kit.emails import PlainEmailStr, plain_email

FAST = TypeAdapter(PlainEmailStr)
REFERENCE = TypeAdapter(EmailStr)

LOCAL_CHARS = string.ascii_letters + string.digits + "._+-"
DOMAIN_CHARS = string.ascii_letters + string.digits + "-"
# what else can be in a value: other ASCII, whitespace, Unicode that NFC / UTS-46 change
ODD = "\"<>()[]\\,;: \t\r\n!#$%&'*/=?^`{|}~@.éÉ\u00a0\u3002\uff0e\u2024ß\u0130\u212a"
SPECIAL = ["local", "localhost", "test", "invalid", "onion", "arpa", "in-addr.arpa", "example"]
MAILBOXES = ["info", "Postmaster", "ABUSE", "support", "sales", "webmaster", "hostmaster"]


def _answer(adapter: TypeAdapter[Any], value: Any) -> tuple[str, Any]:
    try:
        return "ok", adapter.validate_python(value)
    except ValidationError as exc:
        return "refused", exc.errors(include_url=False)


def _label(rng: random.Random) -> str:
    size = rng.choice([1, 2, 3, 5, 8, 61, 62, 63, 64, 65])
    label = "".join(rng.choice(DOMAIN_CHARS) for _ in range(size))
    if rng.random() < 0.3:  # a valid end more often than chance gives
        label = rng.choice(string.ascii_letters) + label[1:-1] + rng.choice(string.ascii_letters)
    return label[:size]


def _domain(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.15:
        base = rng.choice(SPECIAL)
        return base if rng.random() < 0.3 else f"{_label(rng)}.{base}".upper()
    labels = [_label(rng) for _ in range(rng.choice([1, 2, 2, 3, 4]))]
    if roll < 0.3:
        labels[rng.randrange(len(labels))] = rng.choice(["xn--bcher-kva", "ab--cd", "xn--a", "-a"])
    tld = rng.choice(["com", "org", "Example", "c0", "9", "co-uk", "io", "x"])
    domain = ".".join([*labels, tld])
    if rng.random() < 0.1:
        domain = domain.replace(".", rng.choice(["..", ". ", "\u3002"]), 1)
    return domain


def _local(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return rng.choice(MAILBOXES)
    size = rng.choice([1, 2, 6, 12, 63, 64, 65, 70])
    local = "".join(rng.choice(LOCAL_CHARS) for _ in range(size))
    if rng.random() < 0.15:
        local = local.replace(local[rng.randrange(len(local))], rng.choice(ODD), 1)
    return local


def _inputs(count: int) -> list[str]:
    rng = random.Random(17)
    values = [
        "user0001@cpu.example",
        "Ann.Lee+tag@Example.COM",
        "a@b.co",
        "a" * 64 + "@" + "b" * 63 + ".com",
        "a" * 65 + "@example.com",
        "x@" + ".".join(["a" * 63] * 3) + "." + "b" * 61,  # 253 after the @-sign
        "x@" + ".".join(["a" * 63] * 3) + "." + "b" * 62,  # 254
        "y" * 60 + "@" + ".".join(["a" * 63] * 3),  # too long a whole
        ".a@b.com",
        "a.@b.com",
        "a..b@b.com",
        "a@-b.com",
        "a@b-.com",
        "a@b.com-",
        "a@b.com.",
        "a@.b.com",
        "a@@b.com",
        "@b.com",
        "a@",
        "",
        " a@b.com",
        "a@b.com\n",
        "Ann <a@b.com>",
        "a@B.CoM",
        "a@xn--bcher-kva.com",
        "a@ab--cd.com",
        "a@123.com",
        "a@b.123",
    ]
    for _ in range(count):
        roll = rng.random()
        if roll < 0.75:
            values.append(f"{_local(rng)}@{_domain(rng)}")
        else:
            size = rng.randrange(1, 30)
            alphabet = LOCAL_CHARS + ODD
            values.append("".join(rng.choice(alphabet) for _ in range(size)))
    return values


def test_the_fast_path_agrees_with_email_str() -> None:
    fast_answers = 0
    for value in _inputs(20_000):
        expected = _answer(REFERENCE, value)
        assert _answer(FAST, value) == expected, value
        plain = plain_email(value)
        if plain is not None:  # answered without email-validator: only ever what it accepts
            assert expected == ("ok", plain), value
            fast_answers += 1
    assert fast_answers > 2000  # the fast path is taken, not only the fallback


def test_the_login_body_validates_as_before() -> None:
    class Reference(LoginIn):
        email: EmailStr  # type: ignore[assignment]

    schema, reference = LoginIn.model_json_schema(), Reference.model_json_schema()
    assert schema["properties"] == reference["properties"]
    assert schema["required"] == reference["required"]
    for email in ["Ann@Example.com", "ann@localhost", 5, None, "info@example.com", "a b@c.com"]:
        body = {"tenant": "acme", "email": email, "password": "pw"}
        answers = []
        for model in (LoginIn, Reference):
            try:
                answers.append(model.model_validate(body).model_dump())
            except ValidationError as exc:
                answers.append(exc.errors(include_url=False))
        assert answers[0] == answers[1], email
