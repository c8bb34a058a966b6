"""The SSO provider form of the admin console, generated from the API's schemas: each
protocol's settings (`sso.schemas.OidcConfig`, ...) become inputs by their type, and the posted
form becomes the `ProviderIn` that `POST /api/tenant/sso/provider` takes. Secrets are
write-only: their inputs are always empty; left empty they keep the stored value."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from pydantic import BaseModel
from starlette.datastructures import FormData

from bigfootlive.authz.roles import Role
from bigfootlive.sso.schemas import (
    LdapConfig,
    OAuth2Config,
    OidcConfig,
    ProviderIn,
    SamlConfig,
)

CONFIGS: dict[str, type[BaseModel]] = {
    "oidc": OidcConfig,
    "oauth2": OAuth2Config,
    "saml": SamlConfig,
    "ldap": LdapConfig,
}
SECRETS = {"oidc": ["client_secret"], "oauth2": ["client_secret"], "ldap": ["bind_password"]}
MAPPING_KEYS = ("subject", "email", "name", "groups")
_LONG = {"idp_metadata_xml", "ca_cert_pem"}


@dataclasses.dataclass(frozen=True, slots=True)
class Field:
    name: str  # of the config's field; the input is `config.<name>`
    kind: str  # text, long, bool, number, lines, pairs
    required: bool
    label: str


def _kind(name: str, annotation: Any) -> str:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _kind(name, args[0])
    if annotation is bool:
        return "bool"
    if annotation in (int, float):
        return "number"
    if origin is list:
        return "lines"
    if origin is dict:
        return "pairs"
    return "long" if name in _LONG else "text"


def fields_of(protocol: str) -> list[Field]:
    model = CONFIGS[protocol]
    return [
        Field(name, _kind(name, info.annotation), info.is_required(), name.replace("_", " "))
        for name, info in model.model_fields.items()
        if name != "protocol"
    ]


def _shown(kind: str, value: Any) -> str:
    if value is None:
        return ""
    if kind == "lines":
        return "\n".join(str(v) for v in value)
    if kind == "pairs":
        return "\n".join(f"{k}={v}" for k, v in value.items())
    if kind == "bool":
        return "true" if value else ""
    return str(value)


def values_of(protocol: str, settings: dict[str, Any]) -> dict[str, str]:
    """What the form shows: `settings` shaped as ProviderIn (or a template), secrets never."""
    config = settings.get("config") or {}
    model = CONFIGS[protocol]
    out: dict[str, str] = {}
    for f in fields_of(protocol):
        default = model.model_fields[f.name].get_default(call_default_factory=True)
        out[f"config.{f.name}"] = _shown(f.kind, config.get(f.name, default))
    mapping = settings.get("attribute_mapping") or {}
    for key in MAPPING_KEYS:
        out[f"mapping.{key}"] = ", ".join(mapping.get(key) or [])
    roles = settings.get("role_mapping") or {}
    out["role_mapping"] = "\n".join(f"{group} = {role}" for group, role in roles.items())
    out["break_glass_emails"] = "\n".join(settings.get("break_glass_emails") or [])
    out["domains"] = "\n".join(settings.get("domains") or [])
    out["name"] = str(settings.get("name") or "")
    out["default_role"] = str(settings.get("default_role") or Role.VIEWER.value)
    for flag, default in (("enabled", True), ("jit_provisioning", True), ("sso_required", False)):
        out[flag] = "true" if settings.get(flag, default) else ""
    return out


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


def _pairs(text: str, *, last: bool = False) -> dict[str, str]:
    """`key=value` lines; with `last`, split at the last `=` (a group's DN has some)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line:
            key, _, value = line.rpartition("=") if last else line.partition("=")
            if key.strip():
                out[key.strip()] = value.strip()
    return out


def provider_in(protocol: str, form: FormData, provider_id: Any = None) -> ProviderIn:
    """The posted form as the API's body (ValidationError when it is not valid)."""

    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    config: dict[str, Any] = {"protocol": protocol}
    for f in fields_of(protocol):
        raw = text(f"config.{f.name}")
        if f.kind == "bool":
            config[f.name] = raw == "true"
        elif f.kind == "lines":
            config[f.name] = [v for v in (s.strip() for s in raw.split()) if v]
        elif f.kind == "pairs":
            config[f.name] = _pairs(raw)
        elif raw or f.required:
            config[f.name] = raw
    secrets: dict[str, str] = {}
    for name in SECRETS.get(protocol, []):
        value = form.get(f"secret.{name}")
        if text(f"remove.{name}") == "true":
            secrets[name] = ""
        elif isinstance(value, str) and value:
            secrets[name] = value
    body: dict[str, Any] = {
        "id": provider_id,
        "name": text("name"),
        "enabled": text("enabled") == "true",
        "config": config,
        "secrets": secrets,
        "attribute_mapping": {k: _lines(text(f"mapping.{k}")) for k in MAPPING_KEYS},
        "role_mapping": _pairs(text("role_mapping"), last=True),
        "default_role": text("default_role") or Role.VIEWER.value,
        "jit_provisioning": text("jit_provisioning") == "true",
        "sso_required": text("sso_required") == "true",
        "break_glass_emails": _lines(text("break_glass_emails")),
        "domains": _lines(text("domains")),
    }
    return ProviderIn.model_validate(body)


def form_values(protocol: str, form: FormData) -> dict[str, str]:
    """The posted values, to show the form again with its error (secrets left out)."""
    keep = {k: v for k, v in form.items() if isinstance(v, str) and not k.startswith("secret.")}
    base = dict.fromkeys(values_of(protocol, {}), "")
    return {**base, **keep}
