"""ORM instances as another session's query would have left them, made cheaply."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from sqlalchemy.orm import class_mapper, make_transient_to_detached

_T = TypeVar("_T")


def detached(cls: type[_T], values: Mapping[str, Any]) -> _T:
    """An instance of the mapped `cls` with `values` (by attribute key) as its loaded state,
    detached: `session.add` makes it persistent without a statement, its attributes unchanged.
    What `cls(**values)` then `make_transient_to_detached` make, at a fifth of the CPU (the
    constructor sets each attribute through its instrumentation, events and history, all then
    committed at once): a sign-in makes two (its tenant and its account, `tenants.cache`,
    `identity.sign_in_pg`), an authenticated request that reads its caller's account one
    (`authz.subject.AuthSubject.user`)."""
    instance: _T = class_mapper(cls).class_manager.new_instance()
    instance.__dict__.update(values)
    make_transient_to_detached(instance)
    return instance
