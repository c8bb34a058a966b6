"""Typed hooks: how a domain lets other domains react to it without importing them.

The producing domain declares a hook and the payload it passes; the composition root registers
the handlers of the reacting domains; the producer calls `state.hooks.emit(...)` (every handler,
in registration order; a handler refuses by raising) or `state.hooks.ask(...)` (the first
answer that is not None).

    EVENT_TRANSITIONED: Hook[Transition] = Hook("events.transitioned")    # events/hooks.py
    hooks.on(EVENT_TRANSITIONED, retention.on_event_transition)           # composition.py
    await state.hooks.emit(EVENT_TRANSITIONED, Transition(...))           # events/service.py
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, eq=False)
class Hook(Generic[T]):
    """A point where other domains react to a `T`."""

    name: str


@dataclass(frozen=True, eq=False)
class Query(Generic[T, R]):
    """A question about a `T` that another domain may answer with an `R`."""

    name: str


class Hooks:
    def __init__(self) -> None:
        self._handlers: dict[object, list[Callable[[Any], Awaitable[Any]]]] = {}

    def on(self, hook: Hook[T], handler: Callable[[T], Awaitable[None]]) -> None:
        self._handlers.setdefault(hook, []).append(handler)

    def answer(self, query: Query[T, R], handler: Callable[[T], Awaitable[R | None]]) -> None:
        self._handlers.setdefault(query, []).append(handler)

    def handlers(self, hook: Hook[T]) -> list[Callable[[T], Awaitable[None]]]:
        """For a producer that isolates its handlers' failures itself."""
        return list(self._handlers.get(hook, ()))

    async def emit(self, hook: Hook[T], payload: T) -> None:
        for handler in self.handlers(hook):
            await handler(payload)

    async def ask(self, query: Query[T, R], payload: T) -> R | None:
        for handler in self._handlers.get(query, ()):
            answer: R | None = await handler(payload)
            if answer is not None:
                return answer
        return None
