"""kit.hooks: handlers run in registration order, a refusal stops the rest, `ask` takes the
first answer."""

from __future__ import annotations

import pytest

from bigfootlive.errors import Forbidden
from bigfootlive.kit.hooks import Hook, Hooks, Query

THING: Hook[str] = Hook("test.thing")
OTHER: Hook[str] = Hook("test.other")
QUESTION: Query[str, int] = Query("test.question")


async def test_emit_calls_every_handler_in_order_and_only_of_its_hook() -> None:
    hooks, seen = Hooks(), []

    async def first(payload: str) -> None:
        seen.append(("first", payload))

    async def second(payload: str) -> None:
        seen.append(("second", payload))

    hooks.on(THING, first)
    hooks.on(THING, second)
    hooks.on(OTHER, first)
    await hooks.emit(THING, "x")
    assert seen == [("first", "x"), ("second", "x")]


async def test_a_handler_refuses_by_raising_and_the_next_ones_do_not_run() -> None:
    hooks, seen = Hooks(), []

    async def refuse(payload: str) -> None:
        raise Forbidden(code="refused")

    async def after(payload: str) -> None:
        seen.append(payload)

    hooks.on(THING, refuse)
    hooks.on(THING, after)
    with pytest.raises(Forbidden):
        await hooks.emit(THING, "x")
    assert seen == []


async def test_ask_returns_the_first_answer_that_is_not_none() -> None:
    hooks = Hooks()
    assert await hooks.ask(QUESTION, "q") is None

    async def no_answer(payload: str) -> int | None:
        return None

    async def answer(payload: str) -> int | None:
        return len(payload)

    async def never(payload: str) -> int | None:
        raise AssertionError("not asked once an answer is known")

    for handler in (no_answer, answer, never):
        hooks.answer(QUESTION, handler)
    assert await hooks.ask(QUESTION, "four") == 4


async def test_a_fresh_registry_has_no_handlers() -> None:
    hooks = Hooks()
    await hooks.emit(THING, "x")
    assert hooks.handlers(THING) == []
