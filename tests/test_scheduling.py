"""The suite's order: work recorded as long runs first, longest first, a group's tests
together; the rest keeps its order."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tests.fixtures.scheduling import base_id, load_durations, longest_first, unit_of


def _items(*ids: str) -> list[Any]:
    return [SimpleNamespace(nodeid=i) for i in ids]


def _order(items: list[Any], groups: dict[str, str], durations: dict[str, float]) -> list[str]:
    return [item.nodeid for item in longest_first(items, groups, durations)]


def test_long_tests_go_first_longest_first_and_short_ones_keep_their_order():
    items = _items("a", "slow", "b", "unknown", "slowest", "c")
    durations = {"a": 0.4, "slow": 12.0, "b": 0.9, "slowest": 48.5, "c": 0.1}
    assert _order(items, {}, durations) == ["slowest", "slow", "a", "b", "unknown", "c"]


def test_a_groups_tests_stay_together_and_count_as_one_unit():
    # three browser tests of 8 s sharing one server (24 s) outrank a lone 20 s test
    items = _items("a", "web::one@web", "lone", "web::two@web", "b", "web::three@web")
    groups = {"web::one": "web", "web::two": "web", "web::three": "web"}
    durations = {"web::one": 8.0, "web::two": 8.0, "web::three": 8.0, "lone": 20.0}
    assert _order(items, groups, durations) == [
        "web::one@web", "web::two@web", "web::three@web", "lone", "a", "b",
    ]  # fmt: skip


def test_the_group_suffix_is_not_part_of_the_test_id():
    assert base_id("tests/web/test_browser.py::test_x[a]@tests/web/test_browser.py") == (
        "tests/web/test_browser.py::test_x[a]"
    )


def test_a_missing_or_broken_durations_file_orders_nothing(tmp_path: Path):
    assert load_durations(tmp_path / "absent.json") == {}
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert load_durations(broken) == {}
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    assert load_durations(listed) == {}
    good = tmp_path / "good.json"
    good.write_text('{"tests/x.py::t": 3.25}')
    assert load_durations(good) == {"tests/x.py::t": 3.25}


def test_a_shared_package_is_one_unit_and_any_other_file_its_own():
    # the browser modules share one server (package-scoped fixtures): one worker runs them all
    assert unit_of("tests/web/browser/test_browser.py::test_x") == "tests/web/browser"
    assert unit_of("tests/web/browser/test_browser_admin.py::test_y[a]@g") == "tests/web/browser"
    assert unit_of("tests/web/test_pages.py::test_z") == "tests/web/test_pages.py"
    assert unit_of("tests/web/browserish.py::test_z") == "tests/web/browserish.py"
