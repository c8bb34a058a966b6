"""`EmailStr` with a fast path: `PlainEmailStr` accepts and normalizes exactly what pydantic's
`EmailStr` does (same core schema, JSON schema and errors), without email-validator's full
parse for the plain addresses nearly everyone types.

`EmailStr` runs every value through `email_validator.validate_email` (display names, quoting,
Unicode normalization, IDNA): ~17 us of a sign-in's CPU for `user@example.com`. An address of
plain ASCII (letters, digits, `._+-` before the @-sign, letters, digits and hyphens in dotted
labels after it, within the length limits, not a special-use domain, no two dashes in a label)
is one email-validator accepts unchanged but for the domain's letter case (UTS-46 lower-cases
ASCII letters; nothing else in that alphabet changes), so it is answered here. Anything else
(whitespace to strip, a display name, other characters, a mailbox name email-validator
lower-cases, any doubt) takes `EmailStr`'s own validation: every refusal is email-validator's,
with its message. tests/kit/test_emails.py checks the two agree over many inputs.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic.networks import validate_email
from pydantic_core import core_schema

# local part: dot-separated runs of [A-Za-z0-9_+-], at most 64; domain: at least two labels of
# [A-Za-z0-9-], 1-63 each, no hyphen at either end, the last ending with a letter (a TLD).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN = re.compile(
    r"(?=[^@]{1,64}@)[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*"
    rf"@(?=[^@]{{1,253}}\Z)(?:{_LABEL}\.)+(?:[A-Za-z0-9][A-Za-z0-9-]{{0,61}})?[A-Za-z]"
)
_EMAIL_MAX_LENGTH = 254  # email-validator's, of the whole address
_SPECIAL_USE = tuple(SPECIAL_USE_DOMAIN_NAMES)
_CASE_INSENSITIVE = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)


def plain_email(value: str) -> str | None:
    """`value` as `EmailStr` normalizes it when it is a plain ASCII address (above); None when
    it is not one (`EmailStr` decides)."""
    if len(value) > _EMAIL_MAX_LENGTH or _PLAIN.fullmatch(value) is None:
        return None
    local, _, domain = value.partition("@")
    domain = domain.lower()
    if "--" in domain or local.lower() in _CASE_INSENSITIVE:
        return None
    for special in _SPECIAL_USE:
        if domain == special or domain.endswith("." + special):
            return None
    return f"{local}@{domain}"


def _validate(value: str, /) -> str:
    plain = plain_email(value)
    return plain if plain is not None else validate_email(value)[1]


class _PlainFirst:
    """`EmailStr`'s schemas (pydantic.networks), the fast path in front of its validator."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, _source: type[Any], _handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(_validate, core_schema.str_schema())

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        field_schema = handler(schema)
        field_schema.update(type="string", format="email")
        return field_schema


# `EmailStr`, answered without email-validator for a plain address (`plain_email`).
PlainEmailStr = Annotated[str, _PlainFirst]
