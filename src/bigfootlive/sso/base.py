"""What every protocol adapter hands back, and the errors they raise."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bigfootlive.errors import BadRequest, Unauthorized
from bigfootlive.sso.schemas import AttributeMapping


class SsoRejected(Unauthorized):
    """The IdP's answer failed validation. The message is safe to show; details go to audit."""

    code = "sso_rejected"
    message = "The identity provider's response was not accepted"


class SsoConfigError(BadRequest):
    code = "sso_misconfigured"
    message = "The identity provider is not configured correctly"


@dataclass(frozen=True, slots=True)
class ExternalIdentity:
    """A user as asserted by an identity provider, normalised across protocols."""

    subject: str
    email: str | None
    name: str | None
    groups: list[str] = field(default_factory=list)
    email_verified: bool = True
    mfa: bool = False
    method: str = "ext"


def _values(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, list | tuple):
        return [str(v) for v in raw if v is not None and str(v) != ""]
    text = str(raw)
    return [text] if text else []


def pick(attrs: dict[str, Any], names: list[str]) -> list[str]:
    """Values of the first attribute in `names` that has any (case-insensitive names)."""
    lowered = {k.lower(): v for k, v in attrs.items()}
    for name in names:
        found = _values(attrs.get(name, lowered.get(name.lower())))
        if found:
            return found
    return []


def map_identity(
    attrs: dict[str, Any],
    mapping: AttributeMapping,
    *,
    defaults: AttributeMapping,
    subject: str | None = None,
    email_verified: bool = True,
    mfa: bool = False,
    method: str,
) -> ExternalIdentity:
    def names(field_name: str) -> list[str]:
        configured: list[str] = getattr(mapping, field_name)
        return configured or getattr(defaults, field_name)

    subjects = pick(attrs, names("subject"))
    sub = subjects[0] if subjects else subject
    if not sub:
        raise SsoRejected("The identity provider did not identify the user", code="sso_no_subject")
    emails = pick(attrs, names("email"))
    display = pick(attrs, names("name"))
    return ExternalIdentity(
        subject=sub,
        email=emails[0].strip().lower() if emails else None,
        name=display[0].strip() if display else None,
        groups=pick(attrs, names("groups")),
        email_verified=email_verified,
        mfa=mfa,
        method=method,
    )
