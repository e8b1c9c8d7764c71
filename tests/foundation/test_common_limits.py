"""The shared input bounds: quote_prefix (errors never echo a whole input) and the JSON
nesting check (refuses deep JSON before the recursive parser sees it)."""

from __future__ import annotations

import json

import pytest
from dialtone.common.errors import quote_prefix
from dialtone.common.ids import MAX_IDEMPOTENCY_KEY_LENGTH, IdempotencyKey, parse_idempotency_key, valid_session_id
from dialtone.common.limits import MAX_JSON_DEPTH, JsonTooDeep, header_value_ok, json_depth_ok, loads_json


def nested(depth: int, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + close * depth


def test_quote_prefix_keeps_short_values_whole() -> None:
    assert quote_prefix("abc") == "'abc'"
    assert quote_prefix("abc\n") == "'abc\\n'"
    assert quote_prefix(b"ab") == "'ab'"
    assert quote_prefix("x" * 64) == repr("x" * 64)


def test_quote_prefix_cuts_long_values_and_says_how_long() -> None:
    quoted = quote_prefix("k" * 1_000_000)
    assert quoted == repr("k" * 64) + "... (1000000 characters)"
    assert len(quote_prefix("y" * 5000, limit=10)) < 40
    quoted_bytes = quote_prefix(b"\xff" * 1_000_000)
    assert quoted_bytes.endswith("... (1000000 bytes)") and len(quoted_bytes) < 400


@pytest.mark.parametrize("depth", [1, 10, MAX_JSON_DEPTH])
def test_depth_within_the_bound_is_accepted(depth: int) -> None:
    text = nested(depth)
    assert json_depth_ok(text, MAX_JSON_DEPTH)
    assert json_depth_ok(text.encode(), MAX_JSON_DEPTH)
    assert json_depth_ok(json.loads(text), MAX_JSON_DEPTH)
    assert loads_json(text) == json.loads(text)


@pytest.mark.parametrize("text", [
    nested(MAX_JSON_DEPTH + 1),
    nested(30_000),  # the 60 kB payload
    '{"a":' * 30_000 + "1" + "}" * 30_000,
    "[" * 30_000,  # never closed: the parser would still recurse into it
    "[" * 100 + '"unterminated',
    '{"ok": "[[[", "deep": ' + nested(MAX_JSON_DEPTH) + "}",
])
def test_too_deep_is_refused_without_parsing(text: str) -> None:
    assert not json_depth_ok(text, MAX_JSON_DEPTH)
    assert not json_depth_ok(text.encode(), MAX_JSON_DEPTH)
    with pytest.raises(JsonTooDeep, match=f"deeper than {MAX_JSON_DEPTH} levels"):
        loads_json(text)


def test_brackets_inside_strings_are_text() -> None:
    text = json.dumps({"note": "[" * 500 + "{" * 500, "escaped": '\\"[[[' * 50, "list": [[1]]})
    assert json_depth_ok(text, 3)
    assert loads_json(text, 3)["list"] == [[1]]


def test_many_shallow_brackets_are_fine() -> None:
    text = "[" + ",".join(["[]"] * 20_000) + "]"
    assert json_depth_ok(text, 2)
    assert not json_depth_ok(text, 1)


def test_decoded_values_are_walked_without_recursion() -> None:
    deep: list = []
    for _ in range(50_000):
        deep = [deep]
    assert not json_depth_ok(deep, MAX_JSON_DEPTH)
    assert json_depth_ok({"a": {"b": [1, 2]}}, 3)
    assert not json_depth_ok({"a": {"b": [1, 2]}}, 2)
    assert json_depth_ok("scalar text", 0) and json_depth_ok(7, 0)


def test_invalid_json_within_the_bound_is_a_decode_error() -> None:
    with pytest.raises(json.JSONDecodeError):
        loads_json('{"a": ')


@pytest.mark.parametrize("session_id", ["abc\n", "abc\r\n", "\nabc", "a b", "a" * 129, "", "ä"])
def test_session_ids_are_matched_whole(session_id: str) -> None:
    assert not valid_session_id(session_id)


def test_valid_session_ids() -> None:
    assert valid_session_id("a") and not valid_session_id("A-b_c.9" * 19)
    assert valid_session_id("x" * 128) and valid_session_id("call-1.a_b")


@pytest.mark.parametrize("key, reason", [
    ("x\n:0:0", "invalid session id"),
    ("x:0:0\n", "non-negative integers"),
    ("x:²:0", "non-negative integers"),
    ("x:0", "session:seq:index"),
    ("k" * 1_000_000, "longer than"),
])
def test_bad_idempotency_keys_are_refused_with_a_short_message(key: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as refused:
        parse_idempotency_key(key)
    assert len(str(refused.value)) < 200


def test_idempotency_key_round_trip() -> None:
    assert parse_idempotency_key("call-1:12:3") == IdempotencyKey("call-1", 12, 3)
    assert len("x" * 128 + ":" + "9" * 18 + ":" + "9" * 9) == MAX_IDEMPOTENCY_KEY_LENGTH
    assert parse_idempotency_key("x" * 128 + ":" + "9" * 18 + ":" + "9" * 9).index == 999_999_999


@pytest.mark.parametrize("text, reason", [
    ('{"a": NaN}', "NaN is not a JSON number"),
    ('[Infinity]', "Infinity is not a JSON number"),
    ('[-Infinity]', "Infinity is not a JSON number"),
    ('[1e999]', "out of the range"),
    ('{"a": "\\ud800"}', "lone surrogate"),
    ('{"a": "x\\udc00"}', "lone surrogate"),
    ('[' + "9" * 5000 + ']', "digits"),
])
def test_values_python_decodes_but_cannot_encode_again_are_refused(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        loads_json(text)


def test_strict_json_still_reads_what_is_valid() -> None:
    assert loads_json('{"smile": "\\ud83d\\ude00", "back": "\\\\ud800", "n": -1.5e3}') == \
        {"smile": "\U0001F600", "back": "\\ud800", "n": -1500.0}
    assert loads_json(b'{"a": [1, 2]}') == {"a": [1, 2]}
    with pytest.raises(UnicodeDecodeError):
        loads_json(b'{"a": "\xed\xa0\x80"}')  # a surrogate in UTF-8 form


@pytest.mark.parametrize("value", ["x\n", "a\rb", "a\x00b", "\x7f", "a\x1bb", b"x\n"])
def test_header_values_with_control_characters_are_refused(value: str | bytes) -> None:
    assert not header_value_ok(value)


@pytest.mark.parametrize("value", ["", "abc", "a b\tc", "caf\u00e9", b"plain"])
def test_header_values(value: str | bytes) -> None:
    assert header_value_ok(value)
