"""Responses that carry a credential are never stored by a cache (RFC 6749 §5.1, RFC 9111 §5.2).

A response body that carries a token, a secret or a key is a model deriving from `Credentials`.
Every route documented to answer with one (its response model, or a model of its `responses=`,
at any depth of nesting) is answered with `Cache-Control: no-store` and `Pragma: no-cache` by
`kit.nostore.NoStoreMiddleware`, whatever the status. A route that returns a `Response`
itself declares its body model in `responses=` (the API reference needs it there anyway).
"""

from __future__ import annotations

from typing import get_args

from pydantic import BaseModel


class Credentials(BaseModel):
    """Base of the response models that carry a credential."""


def carries_credentials(annotation: object, _seen: set[type] | None = None) -> bool:
    """Whether `annotation` (a model, a union, a list, Annotated[...]) can hold `Credentials`."""
    seen = set() if _seen is None else _seen
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if issubclass(annotation, Credentials):
            return True
        if annotation in seen:
            return False
        seen.add(annotation)
        return any(
            carries_credentials(field.annotation, seen)
            for field in annotation.model_fields.values()
        )
    return any(carries_credentials(arg, seen) for arg in get_args(annotation))


def route_carries_credentials(route: object) -> bool:
    responses = getattr(route, "responses", None) or {}
    models = [getattr(route, "response_model", None)]
    models += [spec.get("model") for spec in responses.values() if isinstance(spec, dict)]
    return any(carries_credentials(model) for model in models if model is not None)
