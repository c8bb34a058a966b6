"""The depth-limited JSON parser reads what json.loads reads, and refuses deep nesting with a
parse error instead of RecursionError."""

from __future__ import annotations

import json

import pytest

from bigfootlive.kit import jsonparse

DOCUMENTS = [
    "{}",
    "[]",
    '{"a": [1, 2.5, -3, true, false, null, "x\\u00e9\\ud83d\\ude00"]}',
    '{"a": 1, "a": 2}',
    "123456789012345678901234567890",
    '  "text"  ',
    "[" * 150 + "]" * 150,
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_reads_what_json_loads_reads(document: str) -> None:
    assert jsonparse.loads(document) == json.loads(document)
    assert jsonparse.loads(document.encode()) == json.loads(document.encode())


def test_a_utf8_byte_order_mark_is_ignored_like_json_loads_does() -> None:
    assert jsonparse.loads(b"\xef\xbb\xbf{}") == {} == json.loads(b"\xef\xbb\xbf{}")


@pytest.mark.parametrize(
    "document",
    [
        b"[" * 10_000 + b"]" * 10_000,
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        b"[" * (jsonparse.MAX_DEPTH + 10) + b"]" * (jsonparse.MAX_DEPTH + 10),
    ],
)
def test_deep_nesting_is_a_json_decode_error_not_a_recursion_error(document: bytes) -> None:
    with pytest.raises(json.JSONDecodeError) as raised:
        jsonparse.loads(document)
    assert isinstance(raised.value, jsonparse.MalformedJson)
    assert "recursion" in raised.value.msg
    assert 0 < raised.value.pos < 6 * (jsonparse.MAX_DEPTH + 5)  # where the limit was met


@pytest.mark.parametrize("document", [b"", b"{", b"\xff", b"[1,]", b"{} x", b'"a\x00b"'])
def test_malformed_documents_are_json_decode_errors(document: bytes) -> None:
    with pytest.raises(jsonparse.MalformedJson):
        jsonparse.loads(document)


def test_error_position_points_into_the_document() -> None:
    with pytest.raises(jsonparse.MalformedJson) as raised:
        jsonparse.loads('{"a": 1,\n "b": }')
    assert (raised.value.lineno, raised.value.colno) == (2, 7)
